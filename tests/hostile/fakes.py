"""Hostile upstreams on loopback: replies that never end, and an image host that never answers.

One Starlette app serves them all, each under its own path prefix, so a gateway's model
entries point at `url + prefix` (see `HostileUpstream.base_url`).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import threading
import zlib
from collections.abc import AsyncIterator
from urllib.parse import quote

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MB = 1024 * 1024
# Past any sensible cap, and past the RSS bound, yet a failing run still ends.
ENDLESS_BYTES = 300 * MB
SLOW_IMAGE_S = 6.0
SLOW_ANSWER_S = 2.0


def _bomb(head: bytes, filler: bytes, size: int) -> bytes:
    """`head` then `filler` repeated to `size` bytes, gzipped: about a thousandth of `size`."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    piece = filler * (MB // len(filler))
    pieces = [packer.compress(head)]
    pieces += [packer.compress(piece) for _ in range(size // len(piece))]
    return b"".join([*pieces, packer.flush()])


# Replies a few hundred KB long on the wire that unpack to `ENDLESS_BYTES`: a JSON body, and
# an event stream whose first event never ends.
JSON_BOMB = _bomb(b'{"id": "x", "object": "chat.completion", "choices": "', b"a", ENDLESS_BYTES)
EVENT_BOMB = _bomb(b"", b"data: " + b"a" * 1000 + b"\n", ENDLESS_BYTES)


# A stream of this many chunks, sent as fast as they go; a reply of this many choices.
FLOOD_CHUNKS = 1_000_000
MANY_CHOICES = 100_000
# What `/numbers/{case}` reports: its usage, and the facts a job upstream would add.
NUMBERS: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    "negative-usage": ({"prompt_tokens": -5, "completion_tokens": -7, "total_tokens": -12}, {}),
    "huge-usage": ({"prompt_tokens": 1e300, "completion_tokens": 1e300, "total_tokens": 2e300}, {}),
    "negative-credits": (
        {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        {"provider": "vlmrun", "credits_used": -50},
    ),
    "nan-credits": (
        {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        {"provider": "vlmrun", "credits_used": float("nan")},
    ),
}


def png(width: int = 16, height: int = 16, *, noise: bool = False) -> bytes:
    """A PNG; with `noise`, incompressible (a 1024x1024 one is about 3 MB)."""
    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        image = Image.new("RGB", (width, height), (200, 30, 30))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def _endless(head: bytes, piece: bytes) -> AsyncIterator[bytes]:
    yield head
    for _ in range(ENDLESS_BYTES // len(piece)):
        yield piece


class HostileUpstream:
    """The hostile replies, each an OpenAI-compatible `/v1/chat/completions` under a prefix:

    - `/endless-body`: a JSON reply that goes on and on;
    - `/endless-line`: an event stream whose first line never ends;
    - `/endless-event`: an event stream whose first event never ends (data lines, no blank);
    - `/gzip-body`, `/gzip-event`: the same as a gzip bomb, a few hundred KB that unpack to
      hundreds of MB (sent although the gateway asks for uncompressed replies);
    - `/echo-key`: a 400 whose message echoes the caller's key upper-cased, base64- and
      URL-encoded;
    - `/predictionguard`: a Prediction Guard chat endpoint that counts its calls (and
      `/predictionguard-slow`, the same after `SLOW_ANSWER_S`);
    - `/echo-model`: a chat endpoint that answers with the model it was asked for, and
      keeps each (`models_asked`);
    - `/record`: a chat endpoint that keeps the last body it got (`last_body`);
    - `/quote-prompt`: a 400 whose message quotes the prompt;
    - `/flood`: a stream of `FLOOD_CHUNKS` one-character chunks, as fast as it can send them;
    - `/many-choices`: a reply with `MANY_CHOICES` choices to a request for one;
    - `/numbers/{case}`: replies whose numbers no upstream should send (`NUMBERS`): usage
      below zero or past any count, credits below zero, a `Retry-After` of `nan`;
    - `/images/slow/{name}`: an image host that answers after `SLOW_IMAGE_S`;
    - `/images/{name}`: images put with `put_image`.
    """

    def __init__(self) -> None:
        self.url = ""
        self.images: dict[str, tuple[bytes, str]] = {}
        self.slow_requests = 0  # image requests to `/images/slow/...` so far
        self.slow_in_flight = self.slow_peak = 0  # of them at once: now, at most
        self.calls = 0
        self.received_bytes = 0  # the largest body `/predictionguard` got
        self.models_asked: list[str] = []
        self.last_body: dict[str, object] = {}
        # A reset starts a new count: fetches still closing from before it don't take part.
        self._generation = 0
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/endless-body/v1/chat/completions", self._body, methods=["POST"]),
                Route("/endless-line/v1/chat/completions", self._line, methods=["POST"]),
                Route("/endless-event/v1/chat/completions", self._event, methods=["POST"]),
                Route("/gzip-body/v1/chat/completions", self._gzip_body, methods=["POST"]),
                Route("/gzip-event/v1/chat/completions", self._gzip_event, methods=["POST"]),
                Route("/echo-key/v1/chat/completions", self._echo_key, methods=["POST"]),
                Route("/predictionguard/chat/completions", self._counted, methods=["POST"]),
                Route("/predictionguard-slow/chat/completions", self._slow, methods=["POST"]),
                Route("/numbers/{case}/v1/chat/completions", self._numbers, methods=["POST"]),
                Route("/echo-model/v1/chat/completions", self._echo_model, methods=["POST"]),
                Route("/record/v1/chat/completions", self._record, methods=["POST"]),
                Route("/quote-prompt/v1/chat/completions", self._quote_prompt, methods=["POST"]),
                Route("/flood/v1/chat/completions", self._flood, methods=["POST"]),
                Route("/many-choices/v1/chat/completions", self._many_choices, methods=["POST"]),
                Route("/images/slow/{name}", self._slow_image, methods=["GET"]),
                Route("/images/{name}", self._image, methods=["GET"]),
            ]
        )

    def base_url(self, prefix: str) -> str:
        suffix = "" if prefix.startswith("predictionguard") else "/v1"
        return f"{self.url}/{prefix}{suffix}"

    def put_image(self, name: str, data: bytes, content_type: str = "image/png") -> str:
        self.images[name] = (data, content_type)
        return f"{self.url}/images/{name}"

    def reset(self) -> None:
        with self._lock:
            self.images.clear()
            self.slow_requests = self.slow_in_flight = self.slow_peak = self.calls = 0
            self.received_bytes = 0
            self.models_asked.clear()
            self._generation += 1

    async def _body(self, _: Request) -> Response:
        head = b'{"id": "x", "object": "chat.completion", "choices": "'
        return StreamingResponse(_endless(head, b"a" * MB), media_type="application/json")

    async def _line(self, _: Request) -> Response:
        return StreamingResponse(_endless(b"data: ", b"a" * MB), media_type="text/event-stream")

    async def _event(self, _: Request) -> Response:
        line = b"data: " + b"a" * 1000 + b"\n"
        return StreamingResponse(_endless(b"", line * 1000), media_type="text/event-stream")

    async def _gzip_body(self, _: Request) -> Response:
        return _gzipped(JSON_BOMB, "application/json")

    async def _gzip_event(self, _: Request) -> Response:
        return _gzipped(EVENT_BOMB, "text/event-stream")

    async def _echo_key(self, request: Request) -> Response:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        basic = base64.b64encode(f"user:{key}".encode()).decode()
        message = (
            f"key {key.upper()} refused; as sent {base64.b64encode(key.encode()).decode()}, "
            f"in basic auth {basic}, url-encoded {quote(key, safe='')}, "
            f"url-safe {base64.urlsafe_b64encode(key.encode()).decode()}"
        )
        return JSONResponse({"error": {"message": message}}, status_code=400)

    async def _counted(self, request: Request) -> Response:
        received = len(await request.body())
        with self._lock:
            self.calls += 1
            self.received_bytes = max(self.received_bytes, received)
        choice = {"index": 0, "message": {"role": "assistant", "content": "ok"}}
        reply = {
            "id": "chatcmpl-hostile",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [{**choice, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        return Response(json.dumps(reply), media_type="application/json")

    async def _record(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.last_body = body
        return await self._counted(request)

    async def _quote_prompt(self, request: Request) -> Response:
        prompt = (await request.json())["messages"][-1]["content"]
        message = f"cannot answer {prompt!r}: it breaks the policy"
        return JSONResponse({"error": {"message": message}}, status_code=400)

    async def _flood(self, _: Request) -> Response:
        return StreamingResponse(_flooding(), media_type="text/event-stream")

    async def _many_choices(self, _: Request) -> Response:
        choices = [
            {"index": i, "message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"}
            for i in range(MANY_CHOICES)
        ]
        reply = {"id": "chatcmpl-many", "object": "chat.completion", "created": 1, "model": "m"}
        return Response(json.dumps({**reply, "choices": choices}), media_type="application/json")

    async def _echo_model(self, request: Request) -> Response:
        model = str((await request.json()).get("model"))
        with self._lock:
            self.models_asked.append(model)
        reply = {
            "id": "chatcmpl-echo",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": model},
                    "finish_reason": "stop",
                }
            ],
        }
        return JSONResponse(reply)

    async def _numbers(self, request: Request) -> Response:
        case = request.path_params["case"]
        if case == "retry-nan":
            error = {"error": {"message": "slow down"}}
            return JSONResponse(error, status_code=429, headers={"Retry-After": "nan"})
        usage, facts = NUMBERS[case]
        reply: dict[str, object] = {
            "id": "chatcmpl-numbers",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
        if facts:
            reply["x_gateway"] = facts
        if (await request.json()).get("stream"):
            return StreamingResponse(_as_events(reply), media_type="text/event-stream")
        return Response(json.dumps(reply), media_type="application/json")

    async def _slow(self, request: Request) -> Response:
        """`/predictionguard`, answering after `SLOW_ANSWER_S`."""
        await asyncio.sleep(SLOW_ANSWER_S)
        return await self._counted(request)

    async def _slow_image(self, request: Request) -> Response:
        with self._lock:
            generation = self._generation
            self.slow_requests += 1
            self.slow_in_flight += 1
            self.slow_peak = max(self.slow_peak, self.slow_in_flight)
        try:  # until the gateway drops the fetch: what's in flight is what it holds
            for _ in range(int(SLOW_IMAGE_S / 0.05)):
                if await request.is_disconnected():
                    break
                await asyncio.sleep(0.05)
        finally:
            with self._lock:
                if generation == self._generation:
                    self.slow_in_flight -= 1
        return Response(png(), media_type="image/png")

    async def _image(self, request: Request) -> Response:
        """The image put under that name (a query string is ignored: many URLs, one image)."""
        found = self.images.get(request.path_params["name"])
        if found is None:
            return Response(b"no such image", status_code=404)
        return Response(found[0], media_type=found[1])


async def _flooding() -> AsyncIterator[bytes]:
    """`FLOOD_CHUNKS` chunks of one character, a thousand to a write, then `[DONE]`."""
    head = b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'
    chunk = head + b'"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
    last = head + b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    for _ in range(FLOOD_CHUNKS // 1000):
        yield chunk * 1000
    yield last + b"data: [DONE]\n\n"


async def _as_events(reply: dict[str, object]) -> AsyncIterator[bytes]:
    """A whole reply as a stream: its content, then its usage (and facts) in a last chunk."""
    chunk = {key: value for key, value in reply.items() if key not in ("usage", "x_gateway")}
    chunk["object"] = "chat.completion.chunk"
    chunk["choices"] = [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]
    last = {**chunk, "choices": [], "usage": reply["usage"]}
    if "x_gateway" in reply:
        last["x_gateway"] = reply["x_gateway"]
    for event in (chunk, last):
        yield b"data: " + json.dumps(event).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


def _gzipped(body: bytes, media_type: str) -> Response:
    return Response(body, media_type=media_type, headers={"Content-Encoding": "gzip"})
