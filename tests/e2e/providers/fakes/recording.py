"""What the job-API fakes share: the record of requests and polls, the API key check and
scripts."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

ScriptT = TypeVar("ScriptT")


@dataclass(frozen=True)
class Received:
    """One request as a fake saw it; header names are lower case, `at` is `time.monotonic()`."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class Poll:
    """One look at a job: which job, when, and the status (or HTTP error) it was given."""

    job_id: str
    at: float
    answer: str


class RecordingFake:
    """What the job-API fakes share: the record of requests and polls, and the API key check."""

    def __init__(self, api_key: str, routes: list[Route]) -> None:
        self.api_key = api_key
        self.url = ""  # set once it is served
        self.received: list[Received] = []
        self.polls: list[Poll] = []
        self.refuse_key = False  # answer 401 to every API call, as for a revoked key
        self.app = Starlette(routes=routes)

    def reset(self) -> None:
        self.received.clear()
        self.polls.clear()
        self.refuse_key = False

    def requests(self, method: str, path: str) -> list[Received]:
        """The requests received for `method` on paths starting with `path`."""
        return [r for r in self.received if r.method == method and r.path.startswith(path)]

    async def record(self, request: Request) -> Received:
        received = Received(
            request.method,
            request.url.path,
            request.url.query,
            {name.lower(): value for name, value in request.headers.items()},
            await request.body(),
            time.monotonic(),
        )
        self.received.append(received)
        return received

    def key_refused(self, received: Received) -> bool:
        return self.refuse_key or received.headers.get("authorization") != f"Bearer {self.api_key}"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


def next_scripted(script: list[ScriptT]) -> ScriptT | None:
    """The next scripted item; the last one stays for every later request."""
    if not script:
        return None
    return script.pop(0) if len(script) > 1 else script[0]


def error_reason(status: int, not_found: str) -> str:
    return not_found if status == 404 else "the service is temporarily unavailable"


def new_request_id() -> str:
    return secrets.token_urlsafe(15)[:20]


def is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def is_http(url: object) -> bool:
    return isinstance(url, str) and url.startswith(("http://", "https://"))
