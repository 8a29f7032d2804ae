"""Upstreams that hand back what the test tells them to: a Masterpiece X whose upload URL and
job id, and a VLM Run whose prediction id, are the test's choice; and an internal service
that no upstream's URL should ever make the gateway reach."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

INTERNAL_SECRET = "INTERNAL-SECRET-7f3a"
STORAGE_DETAIL = "<CanonicalRequest>PUT /bucket/x X-Goog-Credential=uploader</CanonicalRequest>"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    authorization: str


class Recorder:
    """Every request an app saw, in order."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def record(self, request: Request) -> None:
        with self._lock:
            self.seen.append(
                Seen(request.method, request.url.path, request.headers.get("authorization", ""))
            )

    def clear(self) -> None:
        with self._lock:
            self.seen.clear()


class InternalService(Recorder):
    """Something on the gateway's own network: it answers every request with a secret."""

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self.app = Starlette(routes=[Route("/{path:path}", self._any, methods=["GET", "PUT"])])

    async def _any(self, request: Request) -> Response:
        self.record(request)
        return Response(f"<Error>{INTERNAL_SECRET}</Error>", status_code=403)


class HandingUpstream(Recorder):
    """Masterpiece X under `/mpx/v2` and VLM Run under `/vlm/v1`. `asset_url` and `job_id`
    are what they hand back (`{self}` in `asset_url` is this server's own URL); every request
    they get is recorded, those to paths they don't serve included."""

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self.asset_url = "{self}/mpx/storage/ok"
        self.job_id = "job-1"
        self.app = Starlette(
            routes=[
                Route("/mpx/v2/assets/create", self._asset, methods=["POST"]),
                Route("/mpx/v2/llm/image_query", self._submit, methods=["POST"]),
                Route("/mpx/v2/status/{job}", self._status, methods=["GET"]),
                Route("/mpx/storage/ok", self._stored, methods=["PUT"]),
                Route("/mpx/storage/refuses", self._refused, methods=["PUT"]),
                Route("/vlm/v1/image/generate", self._predict, methods=["POST"]),
                Route("/vlm/v1/predictions/{job}", self._prediction, methods=["GET"]),
                Route("/{path:path}", self._elsewhere, methods=["GET", "POST", "PUT"]),
            ]
        )

    def reset(self) -> None:
        self.clear()
        self.asset_url = "{self}/mpx/storage/ok"
        self.job_id = "job-1"

    async def _asset(self, request: Request) -> Response:
        self.record(request)
        url = self.asset_url.replace("{self}", self.url)
        return JSONResponse({"requestId": "asset-1", "assetUrl": f"{url}?X-Goog-Signature=abc"})

    async def _submit(self, request: Request) -> Response:
        self.record(request)
        return JSONResponse({"requestId": self.job_id, "status": "pending", "balance": 10})

    async def _status(self, request: Request) -> Response:
        self.record(request)
        outputs = {"output": "a red square"}
        return JSONResponse({"requestId": self.job_id, "status": "complete", "outputs": outputs})

    async def _stored(self, request: Request) -> Response:
        self.record(request)
        return Response(status_code=200)

    async def _refused(self, request: Request) -> Response:
        """Storage failing, saying what it was asked."""
        self.record(request)
        return Response(f"<Error>{STORAGE_DETAIL}</Error>", status_code=500)

    async def _predict(self, request: Request) -> Response:
        self.record(request)
        return JSONResponse({"id": self.job_id, "status": "pending"})

    async def _prediction(self, request: Request) -> Response:
        self.record(request)
        return JSONResponse({"id": self.job_id, "status": "completed", "response": {"ok": 1}})

    async def _elsewhere(self, request: Request) -> Response:
        self.record(request)
        return JSONResponse({"status": "complete", "outputs": {"output": INTERNAL_SECRET}})
