"""The mock's other upstreams: Masterpiece X jobs and Takeoff's multipart image streams.

Both follow the providers' wire formats. Masterpiece X: `POST /llm/llm_call`
or `/llm/image_query` answers `{requestId}` at once; `GET /status/{requestId}` says `pending`,
then `processing`, until the job's time is up, then `complete` with `outputs.output`. A job's
time comes from its prompt (`[job-10s]`); every status poll is logged for the benchmark, which
collects the log with `GET /_bench/jobs`. Takeoff: `POST /image_generate_stream` takes a
`json_data` part and an `image_data` part, and streams raw-text SSE events (`data: tok`) with
no `[DONE]`: the response just ends. Its consumer group sets the shape (`reply-50x0ms`).
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from bench.replies import StreamFrames, error_response, json_response, shape_of

MPX_API_KEY = "bench-mpx-key"  # what the gateway config gives its Masterpiece X model
DEFAULT_JOB_S = 10.0
PENDING_S = 0.5  # a job is `pending` this long, then `processing`
_JOB_TIME = re.compile(rb"\[job-(\d+(?:\.\d+)?)s\]")
_SSE_HEADERS = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_TAKEOFF_EVENT = b"data: tok\n\n"
_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8", b"RIFF")


@dataclass
class _Job:
    created: float
    due: float
    prompt_bytes: int
    delivered: bool = False


class JobBoard:
    """Masterpiece X jobs on a clock, shared by every connection of the mock."""

    def __init__(
        self, api_key: str = MPX_API_KEY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._authorization = f"Bearer {api_key}".encode()
        self._clock = clock
        self._jobs: dict[str, _Job] = {}
        self._ids = itertools.count(1)
        self._reset()

    def _reset(self) -> None:
        self.created = 0
        self.completed = 0
        self.unauthorized = 0
        self.unknown = 0
        self.polls: list[float] = []

    def create(self, path: bytes, authorization: bytes, body: bytes) -> bytes:
        """`POST /llm/llm_call` or `/llm/image_query`: the job's id, at once."""
        if authorization != self._authorization:
            self.unauthorized += 1
            return error_response(401, "missing or wrong bearer token")
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return error_response(400, "the body is not JSON")
        if not isinstance(request, dict) or not isinstance(request.get("userPrompt"), str):
            return error_response(400, "userPrompt is required")
        if path == b"/llm/image_query":
            urls = request.get("imageUrls")
            if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
                return error_response(400, "imageUrls must be a non-empty list of URLs")
        match = _JOB_TIME.search(body)
        seconds = float(match.group(1)) if match else DEFAULT_JOB_S
        now = self._clock()
        request_id = f"job{next(self._ids):08d}"
        self._jobs[request_id] = _Job(now, now + seconds, len(body))
        self.created += 1
        return json_response(200, {"requestId": request_id, "status": "pending", "balance": 1000})

    def status(self, request_id: str, authorization: bytes) -> bytes:
        """`GET /status/{requestId}`: where the job is; logged as one poll."""
        now = self._clock()
        self.polls.append(now)
        if authorization != self._authorization:
            self.unauthorized += 1
            return error_response(401, "missing or wrong bearer token")
        job = self._jobs.get(request_id)
        if job is None:
            self.unknown += 1
            return error_response(404, f"no request {request_id}")
        if now < job.due:
            pending = now - job.created < PENDING_S
            progress = round(100 * (now - job.created) / (job.due - job.created), 1)
            return json_response(
                200,
                {
                    "requestId": request_id,
                    "status": "pending" if pending else "processing",
                    "progress": progress,
                },
            )
        if not job.delivered:
            job.delivered = True
            self.completed += 1
        return json_response(
            200,
            {
                "requestId": request_id,
                "status": "complete",
                "processingTime_s": round(job.due - job.created, 3),
                "outputUrl": None,
                "progress": None,
                "outputs": {
                    "output": f"mock answer to job {request_id}",
                    "glb": None,
                    "fbx": None,
                    "usdz": None,
                    "thumbnail": None,
                },
            },
        )

    def report(self) -> bytes:
        """`GET /_bench/jobs`: the counts and poll times (`time.monotonic()`) since the last
        report; delivered jobs are forgotten."""
        payload = {
            "created": self.created,
            "completed": self.completed,
            "unauthorized": self.unauthorized,
            "unknown": self.unknown,
            "pending": sum(1 for job in self._jobs.values() if not job.delivered),
            "polls": self.polls,
        }
        self._jobs = {key: job for key, job in self._jobs.items() if not job.delivered}
        self._reset()
        return json_response(200, payload)


def _boundary(content_type: bytes) -> bytes | None:
    kind, _, params = content_type.partition(b";")
    if kind.strip().lower() != b"multipart/form-data":
        return None
    for param in params.split(b";"):
        name, _, value = param.strip().partition(b"=")
        if name.lower() == b"boundary" and value:
            return value.strip(b'"')
    return None


def takeoff_consumer_group(content_type: bytes, parts: list[bytes]) -> str:
    """The consumer group of a Takeoff image request, after checking it is what the real server
    takes: multipart with exactly a `json_data` part (JSON with `text`) and an `image_data`
    part holding image bytes. Raises ValueError saying what is wrong."""
    boundary = _boundary(content_type)
    if boundary is None:
        raise ValueError("the body must be multipart/form-data with a boundary")
    body = b"".join(parts)
    delimiter = b"--" + boundary
    if not body.startswith(delimiter + b"\r\n") or not body.endswith(delimiter + b"--\r\n"):
        raise ValueError("the multipart body is not delimited by its boundary")
    sections = body[len(delimiter) + 2 : -len(delimiter) - 4].split(b"\r\n" + delimiter + b"\r\n")
    found: dict[bytes, bytes] = {}
    for section in sections:
        headers, separator, content = section.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', headers)
        if not separator or name is None:
            raise ValueError("a multipart part has no name")
        found[name.group(1)] = content.removesuffix(b"\r\n")
    if sorted(found) != [b"image_data", b"json_data"]:
        raise ValueError(f"expected the parts json_data and image_data, not {sorted(found)}")
    if not found[b"image_data"].startswith(_IMAGE_SIGNATURES):
        raise ValueError("image_data does not hold an image")
    try:
        payload = orjson.loads(found[b"json_data"])
    except orjson.JSONDecodeError:
        raise ValueError("json_data is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str | list):
        raise ValueError("json_data needs a text")
    return str(payload.get("consumer_group") or "primary")


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def takeoff_frames() -> StreamFrames:
    """A Takeoff stream: SSE headers, one raw-text event per token, then the response ends."""
    return StreamFrames(_SSE_HEADERS, _chunked(_TAKEOFF_EVENT), b"0\r\n\r\n")


def takeoff_reply(consumer_group: str) -> bytes:
    """`/image_generate`: the whole text at once."""
    return json_response(200, {"text": "tok " * shape_of(consumer_group).chunks})
