"""A fake Masterpiece X: assets created and uploaded to presigned storage
URLs, image queries and LLM calls run as jobs, and `/status/{requestId}` polled to the end."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.e2e.providers.fakes.recording import (
    Poll,
    Received,
    RecordingFake,
    error_reason,
    is_http,
    is_text,
    new_request_id,
    next_scripted,
)


@dataclass
class MPXJob:
    """How one Masterpiece X job goes: `pending` on the first status poll, `processing` on the
    next ones until `polls` polls were answered and `duration_s` passed, then `complete` with
    `output`, or `failed` when `fail` gives a reason. `poll_errors` answers the n-th poll
    (1-based) with that HTTP status instead; `poll_body`, when set, answers every poll with
    `200` and that body, as an upstream that garbles its replies would."""

    polls: int = 2
    duration_s: float = 0.0
    output: str = "A red square on a white background."
    fail: str | None = None
    processing_time_s: float = 3.2
    poll_errors: dict[int, int] = field(default_factory=dict)
    submit_status: int | None = None  # an HTTP error for the submission itself
    poll_body: bytes | None = None
    submit_delay_s: float = 0.0


@dataclass
class _MPXRun:
    script: MPXJob
    submitted_at: float
    polls: int = 0
    done_at: float | None = None


@dataclass(frozen=True)
class StoredObject:
    """What a PUT to a presigned URL left in storage."""

    content_type: str
    data: bytes
    received: Received


@dataclass(frozen=True)
class _Asset:
    name: str
    mime: str
    signature: str
    public_url: str


class FakeMasterpieceX(RecordingFake):
    """`/v2/assets/create`, the storage its presigned URLs point at (`PUT`/`GET /storage/...`),
    `/v2/llm/image_query`, `/v2/llm/llm_call` and `/v2/status/{requestId}`."""

    def __init__(self, api_key: str) -> None:
        super().__init__(
            api_key,
            [
                Route("/v2/assets/create", self._create_asset, methods=["POST"]),
                Route("/storage/{bucket}/{key:path}", self._put_object, methods=["PUT"]),
                Route("/storage/{bucket}/{key:path}", self._get_object, methods=["GET"]),
                Route("/v2/llm/image_query", self._image_query, methods=["POST"]),
                Route("/v2/llm/llm_call", self._llm_call, methods=["POST"]),
                Route("/v2/status/{request_id}", self._status, methods=["GET"]),
            ],
        )
        self.balance = 1234
        self.accept_any_url = False  # take image URLs it does not store (they are "public")
        self.storage_status: int | None = None  # refuse every upload with this status
        self.objects: dict[str, StoredObject] = {}  # by public URL
        self.jobs: dict[str, _MPXRun] = {}
        self._assets: dict[str, _Asset] = {}  # by storage path
        self._script: list[MPXJob] = []
        self.abandoned_submissions = 0

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2"

    def script(self, *jobs: MPXJob) -> None:
        """The next jobs submitted go as `jobs` say, in turn (the last one repeats)."""
        self._script = list(jobs)

    def reset(self) -> None:
        super().reset()
        self.balance = 1234
        self.accept_any_url = False
        self.storage_status = None
        self.objects.clear()
        self.jobs.clear()
        self._assets.clear()
        self._script = []
        self.abandoned_submissions = 0

    def job_polls(self, request_id: str) -> list[Poll]:
        return [poll for poll in self.polls if poll.job_id == request_id]

    async def _create_asset(self, request: Request) -> Response:
        received = await self.record(request)
        if self.key_refused(received):
            return _mpx_error(401, "invalid bearer token")
        body = received.json
        problem = _asset_problem(body)
        if problem:
            return _mpx_error(400, problem)
        asset_id = new_request_id()
        path = f"/storage/mpx-genai-assets/{asset_id}/{body['name']}"
        signature = secrets.token_hex(32)
        asset = _Asset(body["name"], body["type"], signature, f"{self.url}{path}")
        self._assets[path] = asset
        query = (
            "X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=uploader%2F20250101%2Fauto"
            f"&X-Goog-Expires=900&X-Goog-SignedHeaders=content-type&X-Goog-Signature={signature}"
        )
        return JSONResponse(
            {
                "requestId": asset_id,
                "assetUrl": f"{asset.public_url}?{query}",
                "status": "pending",
                "balance": self.balance,
            }
        )

    async def _put_object(self, request: Request) -> Response:
        received = await self.record(request)
        asset = self._assets.get(received.path)
        if asset is None:
            return _storage_error(404, "NoSuchKey")
        if self.storage_status:
            return _storage_refusal(self.storage_status, received, asset.public_url)
        if f"X-Goog-Signature={asset.signature}" not in received.query:
            return _storage_error(403, "SignatureDoesNotMatch")
        if "authorization" in received.headers:
            # A presigned URL carries its own credential; a second one is refused.
            return _storage_error(400, "AuthorizationHeaderAndSignature")
        if received.headers.get("content-type") != asset.mime:
            return _storage_error(403, "SignatureDoesNotMatch: content-type")
        if not received.body:
            return _storage_error(400, "EmptyBody")
        self.objects[asset.public_url] = StoredObject(asset.mime, received.body, received)
        return Response(b"", status_code=200)

    async def _get_object(self, request: Request) -> Response:
        stored = self.objects.get(f"{self.url}{request.url.path}")
        if stored is None:
            return _storage_error(404, "NoSuchKey")
        return Response(stored.data, media_type=stored.content_type)

    async def _image_query(self, request: Request) -> Response:
        received = await self.record(request)
        if self.key_refused(received):
            return _mpx_error(401, "invalid bearer token")
        body = received.json
        if not isinstance(body, dict) or not is_text(body.get("userPrompt")):
            return _mpx_error(400, "userPrompt is required")
        urls = body.get("imageUrls")
        if not isinstance(urls, list) or not urls:
            return _mpx_error(400, "imageUrls must be a non-empty array of URLs")
        for url in urls:
            known = isinstance(url, str) and (
                url in self.objects or (self.accept_any_url and is_http(url))
            )
            if not known:
                return _mpx_error(400, f"image not found: {str(url)[:80]}")
        return await self._submit(request)

    async def _llm_call(self, request: Request) -> Response:
        received = await self.record(request)
        if self.key_refused(received):
            return _mpx_error(401, "invalid bearer token")
        body = received.json
        if not isinstance(body, dict) or not is_text(body.get("userPrompt")):
            return _mpx_error(400, "userPrompt is required")
        return await self._submit(request)

    async def _submit(self, request: Request) -> Response:
        script = next_scripted(self._script) or MPXJob()
        await anyio.sleep(script.submit_delay_s)
        if await request.is_disconnected():  # the caller gave up on the submission
            self.abandoned_submissions += 1
        if script.submit_status:
            return _mpx_error(script.submit_status, "the job could not be created")
        request_id = new_request_id()
        self.jobs[request_id] = _MPXRun(script, time.monotonic())
        return JSONResponse({"requestId": request_id, "status": "pending", "balance": self.balance})

    async def _status(self, request: Request) -> Response:
        received = await self.record(request)
        if self.key_refused(received):
            return _mpx_error(401, "invalid bearer token")
        request_id = request.path_params["request_id"]
        run = self.jobs.get(request_id)
        if run is None:
            return _mpx_error(404, "request not found")
        run.polls += 1
        error_status = run.script.poll_errors.get(run.polls)
        if error_status:
            self.polls.append(Poll(request_id, received.at, str(error_status)))
            return _mpx_error(error_status, error_reason(error_status, "request not found"))
        if run.script.poll_body is not None:
            self.polls.append(Poll(request_id, received.at, "malformed"))
            return Response(run.script.poll_body, media_type="application/json")
        reply = _mpx_status(run, request_id, received.at)
        self.polls.append(Poll(request_id, received.at, reply["status"]))
        return JSONResponse(reply)


def _mpx_status(run: _MPXRun, request_id: str, now: float) -> dict[str, Any]:
    script = run.script
    if run.polls <= script.polls or now - run.submitted_at < script.duration_s:
        status = "pending" if run.polls == 1 else "processing"
        return {"requestId": request_id, "status": status, "progress": min(run.polls * 10.0, 90.0)}
    run.done_at = run.done_at or now
    if script.fail is not None:
        return {"requestId": request_id, "status": "failed", "error": script.fail}
    return {
        "requestId": request_id,
        "status": "complete",
        "processingTime_s": script.processing_time_s,
        "outputUrl": None,
        "progress": None,
        "outputs": {
            "output": script.output,
            "glb": None,
            "fbx": None,
            "usdz": None,
            "thumbnail": None,
        },
    }


def _asset_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    for name in ("name", "description", "type"):
        if not is_text(body.get(name)):
            return f"{name} is required"
    if " " in body["name"]:
        return "name must not contain spaces"
    if not str(body["type"]).startswith("image/"):
        return f"unsupported type {body['type']}"
    return None


def _mpx_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"statusCode": status, "message": message}, status_code=status)


def _storage_refusal(status: int, received: Received, url: str) -> Response:
    """A refusal as GCS words it: a 403 echoes the canonical request (the presigned query but
    its signature); other errors name the URL."""
    if status == 403:
        query = "&".join(p for p in received.query.split("&") if "Signature" not in p)
        content_type = received.headers.get("content-type")
        canonical = f"PUT\n{received.path}\n{query}\ncontent-type:{content_type}"
        details = f"<CanonicalRequest>{canonical}</CanonicalRequest>"
        code = "SignatureDoesNotMatch"
    else:
        details = f"<Details>PUT {url}?{received.query}</Details>"
        code = "InternalError"
    xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>{details}</Error>"
    return Response(xml, status_code=status, media_type="application/xml")


def _storage_error(status: int, code: str) -> Response:
    xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code></Error>"
    return Response(xml, status_code=status, media_type="application/xml")
