"""A fake Takeoff: `/generate[_stream]` and `/image_generate[_stream]`, which refuses what the
real server refuses, answers with the next scripted reply and records every request it gets,
refused ones included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from python_multipart.multipart import parse_options_header
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.e2e.providers.fakes.wire import Received, Refused, Script, parse_multipart, sse

EOS = "</s>"
TAKEOFF_NOT_READY = "The server is not ready to process requests yet"
BREAK_DELAY_S = 0.05  # between the last token and a broken-off stream's end


class _BrokenOff(Exception):
    """Raised inside a streamed body: the server drops the connection mid-response."""


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
        self._script = Script(TakeoffReply)
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
        except Refused as refusal:
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
        raise Refused(422, "Malformed request body: expected application/json")
    record.json = _generate_payload(body)


def _read_multipart(record: Received, body: bytes, content_type: str) -> None:
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Refused(422, "Malformed request body: expected multipart/form-data")
    try:
        record.parts = parse_multipart(body, boundary)
    except ValueError as exc:
        raise Refused(422, f"Malformed request body: {exc}") from None
    images = [part for part in record.parts if part.name == "image_data"]
    if len(images) != 1:
        raise Refused(400, f"Only one image can be supplied per request (got {len(images)})")
    payloads = [part for part in record.parts if part.name == "json_data"]
    if len(payloads) != 1:
        raise Refused(422, "Malformed request body: one json_data part is required")
    [payload] = payloads
    if parse_options_header(payload.content_type)[0] != b"application/json":
        raise Refused(422, "Malformed request body: json_data must be application/json")
    record.json = _generate_payload(payload.data)


def _generate_payload(data: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(data)
    except ValueError:
        raise Refused(422, "Malformed request body: not JSON") from None
    text = payload.get("text") if isinstance(payload, dict) else None
    valid = isinstance(text, str) or (
        isinstance(text, list) and text and all(isinstance(t, str) for t in text)
    )
    if not valid:
        raise Refused(422, "Malformed request body: text must be a string or list of strings")
    assert isinstance(payload, dict)
    return payload


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
            await _break_off()
        yield sse(json.dumps({"text": token, "batch_id": index}) if batched else token)
    if break_after is not None:
        await _break_off()


async def _break_off() -> None:
    """Drop the connection a moment after the last token, as a server that crashed does. (An
    HTTP client may drop data that arrives together with the connection's end: the tokens
    before a break are sure to be read only if they came before it.)"""
    await anyio.sleep(BREAK_DELAY_S)
    raise _BrokenOff
