"""A fast OpenAI-compatible upstream for benchmarks: canned completions and paced SSE streams.

The upstream model name sets the reply's shape: `reply-<chunks>x<delay>ms` (say `reply-50x20ms`)
answers with `<chunks>` content tokens, streamed `<delay>` ms apart when the request asks for a
stream. Run it alone with `python -m bench.mock --port 0`; it prints the address it listens on.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
from collections import deque
from dataclasses import dataclass
from functools import cache
from typing import cast

import httptools
import orjson
import uvloop

DEFAULT_CHUNKS = 8
TOKEN = "tok "
_SHAPE = re.compile(r"(\d+)x(\d+(?:\.\d+)?)ms$")
_JSON_HEADERS = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
_SSE_HEADERS = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
_LAST_CHUNK = b"0\r\n\r\n"


@dataclass(frozen=True)
class Shape:
    """How many content tokens a reply has and how far apart they are streamed."""

    chunks: int
    delay_s: float


def shape_of(model: str) -> Shape:
    """The reply shape a model name asks for; plain names get `DEFAULT_CHUNKS` at once."""
    match = _SHAPE.search(model)
    if match is None:
        return Shape(DEFAULT_CHUNKS, 0.0)
    return Shape(max(1, int(match.group(1))), float(match.group(2)) / 1000)


def _json_response(status: int, payload: object) -> bytes:
    body = orjson.dumps(payload)
    reason = b"OK" if status == 200 else b"Error"
    return _JSON_HEADERS % (status, reason, len(body)) + body


def _error(status: int, message: str) -> bytes:
    return _json_response(status, {"error": {"message": message, "type": "invalid_request_error",
                                             "param": None, "code": None}})


@cache
def completion_reply(model: str) -> bytes:
    """A whole `chat.completion` response, headers included."""
    chunks = shape_of(model).chunks
    return _json_response(200, {
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": TOKEN * chunks}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks},
    })


def _frame(payload: object) -> bytes:
    event = b"data: " + (payload if isinstance(payload, bytes) else orjson.dumps(payload)) + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(event), event)


def _chunk(model: str, delta: dict[str, str], finish: str | None = None) -> bytes:
    return _frame({"id": "chatcmpl-mock", "object": "chat.completion.chunk",
                   "created": 1_700_000_000, "model": model,
                   "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                "finish_reason": finish}]})


@dataclass(frozen=True)
class StreamFrames:
    """The chunked-encoding frames of one streamed reply, built once per model."""

    head: bytes
    token: bytes
    tail: bytes


@cache
def stream_frames(model: str, include_usage: bool) -> StreamFrames:
    chunks = shape_of(model).chunks
    tail = _chunk(model, {}, "stop")
    if include_usage:
        tail += _frame({"id": "chatcmpl-mock", "object": "chat.completion.chunk",
                        "created": 1_700_000_000, "model": model, "choices": [],
                        "usage": {"prompt_tokens": 12, "completion_tokens": chunks,
                                  "total_tokens": 12 + chunks}})
    head = _SSE_HEADERS + _chunk(model, {"role": "assistant", "content": ""})
    return StreamFrames(head, _chunk(model, {"content": TOKEN}), tail + _frame(b"[DONE]") + _LAST_CHUNK)


class MockProtocol(asyncio.Protocol):
    """One keep-alive connection: requests are answered in order, streams paced by timers."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._queue: deque[tuple[bytes, bytes, bool]] = deque()
        self._busy = False
        self._keep_alive = True
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(_error(400, "malformed HTTP request"))
            self._close()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = (self._url, b"".join(self._body), self._parser.should_keep_alive())
        self._url, self._body = b"", []
        self._queue.append(request)
        if not self._busy:
            self._next()

    def _next(self) -> None:
        while self._queue and not self._busy and self._transport is not None:
            url, body, self._keep_alive = self._queue.popleft()
            self._answer(url.partition(b"?")[0], body)
            if not self._busy and not self._keep_alive:
                self._close()

    def _answer(self, path: bytes, body: bytes) -> None:
        if path == b"/health":
            self._write(_json_response(200, {"status": "ok"}))
        elif path not in (b"/v1/chat/completions", b"/chat/completions"):
            self._write(_error(404, "not found"))
        else:
            self._complete(body)

    def _complete(self, body: bytes) -> None:
        try:
            request = orjson.loads(body)
            model = str(request["model"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self._write(_error(400, "the body must be a JSON object with a model"))
            return
        if not request.get("stream"):
            self._write(completion_reply(model))
            return
        options = request.get("stream_options") or {}
        frames = stream_frames(model, bool(options.get("include_usage")))
        shape = shape_of(model)
        self._busy = True
        self._write(frames.head)
        self._stream(frames, shape.chunks, shape.delay_s)

    def _stream(self, frames: StreamFrames, left: int, delay_s: float) -> None:
        self._timer = None
        if self._transport is None:
            return
        self._write(frames.token)
        left -= 1
        while left and not delay_s:
            self._write(frames.token)
            left -= 1
        if left:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(delay_s, self._stream, frames, left, delay_s)
            return
        self._write(frames.tail)
        self._busy = False
        if not self._keep_alive:
            self._close()
            return
        self._next()

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def serve(host: str, port: int, ready: asyncio.Future[int] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; the bound port is printed (and set on `ready`)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MockProtocol, host, port, backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"mock upstream listening on http://{host}:{bound}", flush=True)
    if ready is not None:
        ready.set_result(bound)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mock", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
