"""A fast OpenAI-compatible upstream for benchmarks: canned completions and paced SSE streams.

The upstream model name sets the reply's shape: `reply-<chunks>x<delay>ms` (say `reply-50x20ms`)
answers with `<chunks>` content tokens, streamed `<delay>` ms apart when the request asks for a
stream. Run it alone with `python -m bench.mock --port 0`; it prints the address it listens on.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections import deque
from typing import cast

import httptools
import uvloop

from bench.replies import (
    StreamFrames,
    completion_reply,
    error_response,
    json_response,
    request_fields,
    shape_of,
    stream_frames,
)


class MockProtocol(asyncio.Protocol):
    """One keep-alive connection: requests are answered in order, streams paced by timers."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._queue: deque[tuple[bytes, list[bytes], bool]] = deque()
        self._busy = False
        self._keep_alive = True
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def connection_lost(self, _exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(error_response(400, "malformed HTTP request"))
            self._close()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = (self._url, self._body, self._parser.should_keep_alive())
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

    def _answer(self, path: bytes, body: list[bytes]) -> None:
        if path == b"/health":
            self._write(json_response(200, {"status": "ok"}))
        elif path not in (b"/v1/chat/completions", b"/chat/completions"):
            self._write(error_response(404, "not found"))
        else:
            self._complete(body)

    def _complete(self, body: list[bytes]) -> None:
        fields = request_fields(body)
        if fields is None:
            self._write(error_response(400, "the body must be a JSON object with a model"))
            return
        model, stream, include_usage = fields
        if not stream:
            self._write(completion_reply(model))
            return
        frames = stream_frames(model, include_usage)
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


async def serve(host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, after printing the address it listens on."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MockProtocol, host, port, backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"mock upstream listening on http://{host}:{bound}", flush=True)
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
