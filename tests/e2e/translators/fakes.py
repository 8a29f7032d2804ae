"""Fake Takeoff and Prediction Guard servers, and a web server holding client images.

Each fake speaks its vendor's wire format, refuses what the real
server refuses, answers with the next scripted reply (the last one repeats, none scripted means
a default one) and records every request it gets, refused ones included.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

EOS = "</s>"
PG_FORBIDDEN = "api understands the request but refuses to authorize it"
PG_NO_VISION_STREAMING = "streaming is not currently supported when using vision"
PG_ROLES = frozenset({"system", "user", "assistant", "tool"})  # no `developer`
TAKEOFF_NOT_READY = "The server is not ready to process requests yet"
_DATA_URI = re.compile(r"data:(image/[A-Za-z0-9.+-]+);base64,")

R = TypeVar("R")


@dataclass(frozen=True)
class Part:
    """One part of a multipart body, as it arrived."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Received:
    """One request as a fake saw it, and why the fake refused it, if it did."""

    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None  # the JSON body, or Takeoff's `json_data` part
    parts: list[Part] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)  # data URIs: type and bytes
    refused: str | None = None

    def part(self, name: str) -> Part:
        [found] = [part for part in self.parts if part.name == name]
        return found


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _BrokenOff(Exception):
    """Raised inside a streamed body: the server drops the connection mid-response."""


class _Script(Generic[R]):
    def __init__(self, default: Callable[[], R]) -> None:
        self._default = default
        self._replies: list[R] = []

    def set(self, replies: tuple[R, ...]) -> None:
        self._replies = list(replies)

    def next(self) -> R:
        if not self._replies:
            return self._default()
        return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]


def _sse(data: str) -> bytes:
    """One event; a payload with newlines becomes several `data:` lines, as SSE requires."""
    return b"".join(b"data: " + line.encode() + b"\n" for line in data.split("\n")) + b"\n"


# Takeoff


@dataclass
class TakeoffReply:
    """How the fake Takeoff answers one request."""

    tokens: list[str] = field(default_factory=lambda: ["A", " red", " square", "."])
    batch: list[list[str]] | None = None  # tokens per prompt of a batch; default: `tokens` + " #i"
    eos: bool = False  # end each answer with a `</s>` token
    status: int = 200
    error: str = "Bad request: the prompt could not be read"
    break_after: int | None = None  # streams: drop the connection after this many events

    def answers(self, count: int) -> list[list[str]]:
        if self.batch is not None:
            answers = self.batch
        elif count == 1:
            answers = [self.tokens]
        else:
            answers = [[*self.tokens, f" #{index}"] for index in range(count)]
        return [[*answer, EOS] if self.eos else list(answer) for answer in answers]


class FakeTakeoff:
    """`/generate[_stream]` (JSON) and `/image_generate[_stream]` (multipart `json_data` plus
    exactly one `image_data`): `{"text": ...}` replies, or raw-text SSE that ends with the body."""

    def __init__(self) -> None:
        self.url = ""
        self.received: list[Received] = []
        self._script = _Script(TakeoffReply)
        paths = ("generate", "generate_stream", "image_generate", "image_generate_stream")
        self.app = Starlette(
            routes=[Route(f"/{path}", self._generate, methods=["POST"]) for path in paths]
        )

    def script(self, *replies: TakeoffReply) -> None:
        self._script.set(replies)

    def reset(self) -> None:
        self._script.set(())
        self.received.clear()

    async def _generate(self, request: Request) -> Response:
        path = request.url.path
        record = Received(path, dict(request.headers))
        self.received.append(record)
        content_type = request.headers.get("content-type", "")
        try:
            if path.startswith("/image_"):
                _read_multipart(record, await request.body(), content_type)
            else:
                _read_json_body(record, await request.body(), content_type)
        except _Refused as refusal:
            record.refused = refusal.message
            return JSONResponse({"detail": refusal.message}, status_code=refusal.status)
        reply = self._script.next()
        if reply.status == 503:
            return PlainTextResponse(TAKEOFF_NOT_READY, status_code=503)
        if reply.status != 200:
            return JSONResponse({"detail": reply.error}, status_code=reply.status)
        assert record.json is not None
        text = record.json["text"]
        batched = isinstance(text, list)
        answers = reply.answers(len(text) if batched else 1)
        if not path.endswith("_stream"):
            texts = ["".join(answer) for answer in answers]
            return JSONResponse({"text": texts if batched else texts[0]})
        events = _takeoff_events(answers, batched=batched, break_after=reply.break_after)
        return StreamingResponse(events, media_type="text/event-stream")


def _read_json_body(record: Received, body: bytes, content_type: str) -> None:
    if parse_options_header(content_type)[0] != b"application/json":
        raise _Refused(422, "Malformed request body: expected application/json")
    record.json = _generate_payload(body)


def _read_multipart(record: Received, body: bytes, content_type: str) -> None:
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise _Refused(422, "Malformed request body: expected multipart/form-data")
    try:
        record.parts = parse_multipart(body, boundary)
    except ValueError as exc:
        raise _Refused(422, f"Malformed request body: {exc}") from None
    images = [part for part in record.parts if part.name == "image_data"]
    if len(images) != 1:
        raise _Refused(400, f"Only one image can be supplied per request (got {len(images)})")
    payloads = [part for part in record.parts if part.name == "json_data"]
    if len(payloads) != 1:
        raise _Refused(422, "Malformed request body: one json_data part is required")
    [payload] = payloads
    if parse_options_header(payload.content_type)[0] != b"application/json":
        raise _Refused(422, "Malformed request body: json_data must be application/json")
    record.json = _generate_payload(payload.data)


def _generate_payload(data: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(data)
    except ValueError:
        raise _Refused(422, "Malformed request body: not JSON") from None
    text = payload.get("text") if isinstance(payload, dict) else None
    valid = isinstance(text, str) or (
        isinstance(text, list) and text and all(isinstance(t, str) for t in text)
    )
    if not valid:
        raise _Refused(422, "Malformed request body: text must be a string or list of strings")
    assert isinstance(payload, dict)
    return payload


def parse_multipart(body: bytes, boundary: bytes) -> list[Part]:
    """The parts of a multipart/form-data body, with python-multipart doing the parsing."""
    parts: list[Part] = []
    headers: dict[str, str] = {}
    name: list[bytes] = []
    value: list[bytes] = []
    data: list[bytes] = []
    ended: list[bool] = []

    def begin() -> None:
        headers.clear()
        data.clear()

    def header_end() -> None:
        headers[b"".join(name).decode().lower()] = b"".join(value).decode()
        name.clear()
        value.clear()

    def part_end() -> None:
        parts.append(_part(headers, b"".join(data)))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": begin,
            "on_header_field": lambda b, start, end: name.append(b[start:end]),
            "on_header_value": lambda b, start, end: value.append(b[start:end]),
            "on_header_end": header_end,
            "on_part_data": lambda b, start, end: data.append(b[start:end]),
            "on_part_end": part_end,
            "on_end": lambda: ended.append(True),
        },
    )
    parser.write(body)
    parser.finalize()
    if not ended:
        raise ValueError("the body ends before its closing boundary")
    return parts


def _part(headers: dict[str, str], data: bytes) -> Part:
    disposition, params = parse_options_header(headers.get("content-disposition"))
    if disposition != b"form-data" or b"name" not in params:
        raise ValueError("a part has no form-data Content-Disposition with a name")
    filename = params.get(b"filename")
    return Part(
        name=params[b"name"].decode(),
        filename=filename.decode() if filename is not None else None,
        content_type=headers.get("content-type"),
        data=data,
    )


def _interleave(answers: list[list[str]]) -> list[tuple[int, str]]:
    """Every token with its batch id, round-robin from the last prompt: Takeoff promises no
    order between the prompts of a batch."""
    order = []
    for step in range(max(len(answer) for answer in answers)):
        for index in reversed(range(len(answers))):
            if step < len(answers[index]):
                order.append((index, answers[index][step]))
    return order


async def _takeoff_events(
    answers: list[list[str]], *, batched: bool, break_after: int | None
) -> AsyncIterator[bytes]:
    for sent, (index, token) in enumerate(_interleave(answers)):
        if sent == break_after:
            raise _BrokenOff
        yield _sse(json.dumps({"text": token, "batch_id": index}) if batched else token)
    if break_after is not None:
        raise _BrokenOff


# Prediction Guard


@dataclass
class PGReply:
    """How the fake Prediction Guard answers one request."""

    text: str = "A red square on a white background."
    deltas: list[str] | None = None  # stream pieces; default: `text` word by word
    legacy: bool = False  # `choices[].text`, as the older API answered
    usage: tuple[int, int] | None = (21, 9)  # prompt and completion tokens; None: left out
    finish_reason: str | None = "stop"  # None: left out
    tool_calls: list[dict[str, Any]] | None = None
    status: int = 200
    error: str = "required fields are missing"
    done: bool = True  # end streams with `data: [DONE]` (the real one's habit is unverified)

    def pieces(self) -> list[str]:
        if self.deltas is not None:
            return self.deltas
        words = self.text.split(" ")
        return [word + " " for word in words[:-1]] + words[-1:]


class FakePredictionGuard:
    """`POST /chat/completions` taking images only as base64 data URIs and refusing to stream
    them, and only the roles it knows; errors are `{"error": "<string>"}`."""

    def __init__(self, api_key: str) -> None:
        self.url = ""
        self.api_key = api_key
        self.received: list[Received] = []
        self._script = _Script(PGReply)
        self.app = Starlette(routes=[Route("/chat/completions", self._chat, methods=["POST"])])

    def script(self, *replies: PGReply) -> None:
        self._script.set(replies)

    def reset(self) -> None:
        self._script.set(())
        self.received.clear()

    async def _chat(self, request: Request) -> Response:
        record = Received(request.url.path, dict(request.headers))
        self.received.append(record)
        try:
            body = self._check(record, await request.body())
        except _Refused as refusal:
            record.refused = refusal.message
            return JSONResponse({"error": refusal.message}, status_code=refusal.status)
        reply = self._script.next()
        if reply.status != 200:
            return JSONResponse({"error": reply.error}, status_code=reply.status)
        if body.get("stream"):
            return StreamingResponse(_pg_events(body, reply), media_type="text/event-stream")
        return JSONResponse(_pg_completion(body, reply))

    def _check(self, record: Received, raw: bytes) -> dict[str, Any]:
        if record.headers.get("authorization") != f"Bearer {self.api_key}":
            raise _Refused(403, PG_FORBIDDEN)
        try:
            body = json.loads(raw)
        except ValueError:
            raise _Refused(400, "the request body is not valid JSON") from None
        if not isinstance(body, dict) or not body.get("model") or not body.get("messages"):
            raise _Refused(400, "required fields are missing")
        record.json = body
        for message in body["messages"] if isinstance(body["messages"], list) else []:
            role = message.get("role") if isinstance(message, dict) else None
            if role not in PG_ROLES:
                raise _Refused(400, f"invalid message role: {role}")
        for url in _image_urls(body["messages"]):
            match = _DATA_URI.match(url)
            if match is None:
                raise _Refused(400, "image_url must be a base64 data URI (data:image/...;base64,)")
            try:
                data = base64.b64decode(url[match.end() :], validate=True)
            except (binascii.Error, ValueError):
                raise _Refused(400, "the image is not valid base64") from None
            record.images.append((match.group(1), data))
        if record.images and body.get("stream"):
            raise _Refused(400, PG_NO_VISION_STREAMING)
        return body


def _image_urls(messages: object) -> list[str]:
    if not isinstance(messages, list):
        return []
    urls = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                image_url = part.get("image_url")
                url = image_url.get("url") if isinstance(image_url, dict) else None
                if not isinstance(url, str):
                    raise _Refused(400, "image_url.url is required")
                urls.append(url)
    return urls


def _usage(usage: tuple[int, int]) -> dict[str, int]:
    prompt, completion = usage
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _pg_completion(body: dict[str, Any], reply: PGReply) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0}
    if reply.legacy:
        choice.update(text=reply.text, status="success")
    else:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls is not None:
            message["tool_calls"] = reply.tool_calls
        choice["message"] = message
    if reply.finish_reason is not None:
        choice["finish_reason"] = reply.finish_reason
    completion: dict[str, Any] = {
        "id": f"{'cmpl' if reply.legacy else 'chat'}-{uuid.uuid4()}",
        "object": "text_completion" if reply.legacy else "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [choice],
    }
    if reply.usage is not None:
        completion["usage"] = _usage(reply.usage)
    return completion


async def _pg_events(body: dict[str, Any], reply: PGReply) -> AsyncIterator[bytes]:
    envelope = {
        "id": f"chat-{uuid.uuid4()}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return _sse(json.dumps({**envelope, "choices": [choice]}))

    for sent, piece in enumerate(reply.pieces()):
        yield chunk({"role": "assistant", "content": piece} if sent == 0 else {"content": piece})
    yield chunk({}, reply.finish_reason or "stop")
    include_usage = (body.get("stream_options") or {}).get("include_usage")
    if include_usage and reply.usage is not None:
        yield _sse(json.dumps({**envelope, "choices": [], "usage": _usage(reply.usage)}))
    if reply.done:
        yield b"data: [DONE]\n\n"


# Client images
