"""A fake OpenAI-compatible upstream (OpenAI or AI/ML API flavour) that records what it gets.

Each request is answered by the next `Reply` scripted for its `model` (the upstream model name
the gateway sends; the last reply repeats), or by a default `Reply()`: a short completion, or
its words as an SSE stream.
It also serves `GET /images/{name}` from `images`, as a web server holding client images would.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

Flavour = Literal["openai", "aimlapi"]


@dataclass(frozen=True)
class ToolCall:
    """A function call the fake's model asks for: its id, name and JSON arguments."""

    call_id: str
    name: str
    arguments: str

    def as_chat(self) -> dict[str, Any]:
        function = {"name": self.name, "arguments": self.arguments}
        return {"id": self.call_id, "type": "function", "function": function}


@dataclass
class Reply:
    """How the fake answers one request. Stream-only knobs are ignored for plain requests."""

    text: str = "A red square on a white background."
    status: int | None = None  # None: the flavour's success status (200, or 201 for AI/ML API)
    error: str = "fake upstream refused the request made with key {api_key}"
    body: bytes | None = None  # sent as it is, instead of a JSON reply (malformed replies)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the status line
    deltas: list[str] | None = None  # the stream's content pieces; default: `text` word by word
    chunk_delay_s: float = 0.0  # before each content piece
    keepalive: bool = False  # a `: keepalive` comment before each content piece
    crlf: bool = False  # end the stream's lines with CRLF instead of LF
    break_after: int | None = None  # end the stream after this many pieces: no finish, no [DONE]
    error_after: int | None = None  # an `{"error": ...}` event after this many pieces, then end
    after_done: str | None = None  # a piece sent after `[DONE]`, which nobody should read
    usage: tuple[int, int] | None = (12, 7)  # prompt and completion tokens; None: not sent
    tool_calls: list[ToolCall] | None = None  # asked for after the text (if any)
    finish_reason: str | None = None  # None: `tool_calls` when there are some, else `stop`
    sends_finish: bool = True  # False: the stream ends with `[DONE]` without a finish chunk
    # Compress the reply although nobody asked: `gzip` or `deflate` (each stream event
    # flushed), or a coding the fake can't make, sent with the body as it is (`br`).
    encoding: str | None = None

    @property
    def finish(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    def pieces(self) -> list[str]:
        if self.deltas is not None:
            return self.deltas
        if not self.text:
            return []
        words = self.text.split(" ")
        return [word + " " for word in words[:-1]] + words[-1:]


@dataclass
class ReceivedRequest:
    """One request as the fake saw it, and, for streams, whether the client cut the response."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""  # the body's bytes as they came
    stream_cancelled: threading.Event = field(default_factory=threading.Event)
    cancelled_at: float | None = None

    @property
    def model(self) -> str | None:
        model = self.body.get("model")
        return model if isinstance(model, str) else None

    @property
    def api_key(self) -> str:
        return self.headers.get("authorization", "").removeprefix("Bearer ")


# What `GET /v1/models` lists, as an OpenAI-compatible server names its models.
LISTED_MODELS = ("vision-small", "vision-large")


class FakeUpstream:
    """A Starlette app serving `POST /v1/chat/completions` as scripted, recording each request."""

    def __init__(self, flavour: Flavour = "openai") -> None:
        self.flavour = flavour
        self.url = ""  # set once it is served
        self.received: list[ReceivedRequest] = []
        self.images: dict[str, bytes] = {}
        self.image_requests: list[str] = []
        self._replies: dict[str, list[Reply]] = {}
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/images/{name}", self._image, methods=["GET"]),
            ]
        )
        self.listed_models = list(LISTED_MODELS)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def success_status(self) -> int:
        return 201 if self.flavour == "aimlapi" else 200

    def script(self, model: str, *replies: Reply) -> None:
        """Answer requests for the upstream model `model` with `replies`, in turn."""
        self._replies[model] = list(replies)

    def _next_reply(self, model: str) -> Reply:
        replies = self._replies.get(model)
        if not replies:
            return Reply()
        return replies.pop(0) if len(replies) > 1 else replies[0]

    def reset(self) -> None:
        self._replies.clear()
        self.received.clear()
        self.images.clear()
        self.image_requests.clear()

    async def _models(self, _: Request) -> Response:
        """`GET /v1/models` as OpenAI answers it: the ids this upstream serves."""
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
            for m in self.listed_models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def _chat_completions(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse(self._error_body(400, "the body is not JSON"), status_code=400)
        record = ReceivedRequest(request.url.path, dict(request.headers), body, raw)
        self.received.append(record)
        reply = self._next_reply(str(body.get("model")))
        if reply.delay_s:
            await anyio.sleep(reply.delay_s)
        status = reply.status or self.success_status
        if reply.body is not None:
            return Response(
                reply.body, status_code=status, headers=reply.headers, media_type="application/json"
            )
        if status >= 400:
            message = reply.error.replace("{api_key}", record.api_key)
            return JSONResponse(
                self._error_body(status, message), status_code=status, headers=reply.headers
            )
        headers = {**reply.headers, "Content-Encoding": reply.encoding} if reply.encoding else None
        if body.get("stream"):
            return StreamingResponse(
                _packed(self._events(record, reply), reply.encoding),
                status_code=status,
                headers=headers or reply.headers,
                media_type="text/event-stream",
            )
        if reply.encoding:
            completion = json.dumps(_completion(record, reply)).encode()
            packed = b"".join([p async for p in _packed(_one(completion), reply.encoding)])
            return Response(packed, status, headers, media_type="application/json")
        return JSONResponse(_completion(record, reply), status_code=status, headers=reply.headers)

    async def _image(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.image_requests.append(name)
        if name not in self.images:
            return Response(b"no such image", status_code=404, media_type="text/plain")
        return Response(self.images[name], media_type="image/png")

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        if self.flavour == "aimlapi":
            return {
                "message": message,
                "path": "/v1/chat/completions",
                "requestId": str(uuid.uuid4()),
                "statusCode": str(status),
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            }
        kind = "invalid_request_error" if status < 500 else "server_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    async def _events(self, record: ReceivedRequest, reply: Reply) -> AsyncIterator[bytes]:
        stream = _Stream(record, reply)
        try:
            yield stream.chunk({"role": "assistant", "content": ""})
            for sent, piece in enumerate(reply.pieces()):
                if sent == reply.break_after:
                    return
                if sent == reply.error_after:
                    yield stream.error(f"the model crashed mid-answer (key {record.api_key})")
                    return
                await anyio.sleep(reply.chunk_delay_s)
                if reply.keepalive:
                    yield stream.line(b": keepalive")
                yield stream.chunk({"content": piece})
            for index, call in enumerate(reply.tool_calls or []):
                for delta in _call_deltas(index, call):
                    yield stream.chunk({"tool_calls": [delta]})
            if reply.sends_finish:
                yield stream.chunk({}, finish_reason=reply.finish)
            if stream.include_usage and reply.usage is not None:
                yield stream.data(
                    {**stream.envelope, "choices": [], "usage": usage_body(reply.usage)}
                )
            yield stream.line(b"data: [DONE]")
            if reply.after_done is not None:
                yield stream.chunk({"content": reply.after_done})
        except BaseException:
            record.cancelled_at = time.monotonic()
            record.stream_cancelled.set()
            raise


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _packed(pieces: AsyncIterator[bytes], encoding: str | None) -> AsyncIterator[bytes]:
    """`pieces` compressed with `encoding` (gzip or zlib's deflate), each flushed as it goes;
    as they are for any other coding."""
    if encoding not in ("gzip", "deflate"):
        async for piece in pieces:
            yield piece
        return
    packer = zlib.compressobj(6, zlib.DEFLATED, 31 if encoding == "gzip" else zlib.MAX_WBITS)
    async for piece in pieces:
        yield packer.compress(piece) + packer.flush(zlib.Z_SYNC_FLUSH)
    yield packer.flush()


class _Stream:
    """One stream's events: their fixed parts and their line endings."""

    def __init__(self, record: ReceivedRequest, reply: Reply) -> None:
        options = record.body.get("stream_options") or {}
        self.include_usage = bool(options.get("include_usage"))
        self.newline = b"\r\n" if reply.crlf else b"\n"
        self.envelope: dict[str, Any] = {
            "id": f"chatcmpl-fake{uuid.uuid4().hex[:12]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": record.model,
            "system_fingerprint": "fp_fake",
        }

    def line(self, line: bytes) -> bytes:
        """One line and the blank line that ends the event."""
        return line + self.newline * 2

    def data(self, payload: dict[str, Any]) -> bytes:
        return self.line(b"data: " + json.dumps(payload).encode())

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk: dict[str, Any] = {**self.envelope, "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None
        return self.data(chunk)

    def error(self, message: str) -> bytes:
        error = {"message": message, "type": "server_error", "param": None, "code": None}
        return self.data({"error": error})


def _call_deltas(index: int, call: ToolCall) -> list[dict[str, Any]]:
    """A tool call as OpenAI streams it: id and name first, then the arguments in two pieces."""
    half = len(call.arguments) // 2
    opening = {**call.as_chat(), "function": {"name": call.name, "arguments": ""}}
    pieces = [call.arguments[:half], call.arguments[half:]]
    return [
        {"index": index, **opening},
        *({"index": index, "function": {"arguments": piece}} for piece in pieces if piece),
    ]


def usage_body(usage: tuple[int, int]) -> dict[str, int]:
    """An OpenAI `usage` object for prompt and completion token counts."""
    prompt, completion = usage
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(record: ReceivedRequest, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [call.as_chat() for call in reply.tool_calls]
    choices = [
        {
            "index": index,
            "message": message,
            "logprobs": None,
            "finish_reason": reply.finish,
        }
        for index in range(int(record.body.get("n") or 1))
    ]
    completion: dict[str, Any] = {
        "id": f"chatcmpl-fake{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": record.model,
        "choices": choices,
        "system_fingerprint": "fp_fake",
    }
    if reply.usage is not None:
        completion["usage"] = usage_body(reply.usage)
    return completion
