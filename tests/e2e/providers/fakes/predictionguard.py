"""A fake Prediction Guard: `POST /chat/completions`, which refuses what the real server
refuses, answers with the next scripted reply and records every request it gets, refused ones
included."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.e2e.fakes.openai_compat import usage_body
from tests.e2e.providers.fakes.wire import Received, Refused, Script, sse

PG_FORBIDDEN = "api understands the request but refuses to authorize it"
PG_NO_VISION_STREAMING = "streaming is not currently supported when using vision"
PG_ROLES = frozenset({"system", "user", "assistant", "tool"})  # no `developer`
_DATA_URI = re.compile(r"data:(image/[A-Za-z0-9.+-]+);base64,")


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
    delay_s: float = 0.0  # before it answers (watching for its caller leaving meanwhile)

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
        self._script = Script(PGReply)
        self.app = Starlette(routes=[Route("/chat/completions", self._chat, methods=["POST"])])

    def script(self, *replies: PGReply) -> None:
        self._script.set(replies)

    def reset(self) -> None:
        self._script.set(())
        self.received.clear()

    async def _chat(self, request: Request) -> Response:
        record = Received(request.url.path, dict(request.headers), raw=await request.body())
        self.received.append(record)
        try:
            body = self._check(record, record.raw)
        except Refused as refusal:
            record.refused = refusal.message
            return JSONResponse({"error": refusal.message}, status_code=refusal.status)
        reply = self._script.next()
        if reply.delay_s:
            await _wait(request, record, reply.delay_s)
        record.answered_at = time.monotonic()
        if reply.status != 200:
            return JSONResponse({"error": reply.error}, status_code=reply.status)
        if body.get("stream"):
            return StreamingResponse(_pg_events(body, reply), media_type="text/event-stream")
        return JSONResponse(_pg_completion(body, reply))

    def _check(self, record: Received, raw: bytes) -> dict[str, Any]:
        if record.headers.get("authorization") != f"Bearer {self.api_key}":
            raise Refused(403, PG_FORBIDDEN)
        try:
            body = json.loads(raw)
        except ValueError:
            raise Refused(400, "the request body is not valid JSON") from None
        if not isinstance(body, dict) or not body.get("model") or not body.get("messages"):
            raise Refused(400, "required fields are missing")
        record.json = body
        for message in body["messages"] if isinstance(body["messages"], list) else []:
            role = message.get("role") if isinstance(message, dict) else None
            if role not in PG_ROLES:
                raise Refused(400, f"invalid message role: {role}")
        for url in _image_urls(body["messages"]):
            match = _DATA_URI.match(url)
            if match is None:
                raise Refused(400, "image_url must be a base64 data URI (data:image/...;base64,)")
            try:
                data = base64.b64decode(url[match.end() :], validate=True)
            except (binascii.Error, ValueError):
                raise Refused(400, "the image is not valid base64") from None
            record.images.append((match.group(1), data))
        if record.images and body.get("stream"):
            raise Refused(400, PG_NO_VISION_STREAMING)
        return body


async def _wait(request: Request, record: Received, seconds: float) -> None:
    """`seconds`, working on the answer; a caller that leaves meanwhile is noted when seen."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        await anyio.sleep(0.02)
        if record.abandoned_at is None and await request.is_disconnected():
            record.abandoned_at = time.monotonic()


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
                    raise Refused(400, "image_url.url is required")
                urls.append(url)
    return urls


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
        completion["usage"] = usage_body(reply.usage)
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
        return sse(json.dumps({**envelope, "choices": [choice]}))

    for sent, piece in enumerate(reply.pieces()):
        yield chunk({"role": "assistant", "content": piece} if sent == 0 else {"content": piece})
    yield chunk({}, reply.finish_reason or "stop")
    include_usage = (body.get("stream_options") or {}).get("include_usage")
    if include_usage and reply.usage is not None:
        yield sse(json.dumps({**envelope, "choices": [], "usage": usage_body(reply.usage)}))
    if reply.done:
        yield b"data: [DONE]\n\n"
