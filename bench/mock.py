"""A fast OpenAI-compatible upstream for benchmarks: canned completions and paced SSE streams.

The upstream model name sets the reply's shape: `reply-<chunks>x<delay>ms` (say `reply-50x20ms`)
answers with `<chunks>` content tokens, streamed `<delay>` ms apart when the request asks for a
stream. The same process also plays Masterpiece X (jobs to poll) and Takeoff (multipart image
streams): see `bench/upstreams.py`. Run it alone with `python -m bench.mock --port 0`; it prints
the address it listens on.
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
from bench.upstreams import JobBoard, takeoff_consumer_group, takeoff_frames, takeoff_reply

_CHAT_PATHS = (b"/v1/chat/completions", b"/chat/completions")
_JOB_PATHS = (b"/llm/llm_call", b"/llm/image_query")
_TAKEOFF_FRAMES = takeoff_frames()


class _Request:
    __slots__ = ("authorization", "body", "content_type", "keep_alive", "method", "url")

    def __init__(self) -> None:
        self.url = b""
        self.body: list[bytes] = []
        self.content_type = b""
        self.authorization = b""
        self.method = b""
        self.keep_alive = True


class MockProtocol(asyncio.Protocol):
    """One keep-alive connection: requests are answered in order, streams paced by timers."""

    def __init__(self, board: JobBoard) -> None:
        self._board = board
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._request = _Request()
        self._queue: deque[_Request] = deque()
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
        self._request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-type":
            self._request.content_type = value
        elif name == b"authorization":
            self._request.authorization = value

    def on_body(self, body: bytes) -> None:
        self._request.body.append(body)

    def on_message_complete(self) -> None:
        request, self._request = self._request, _Request()
        request.keep_alive = self._parser.should_keep_alive()
        request.method = self._parser.get_method()
        self._queue.append(request)
        if not self._busy:
            self._next()

    def _next(self) -> None:
        while self._queue and not self._busy and self._transport is not None:
            request = self._queue.popleft()
            self._keep_alive = request.keep_alive
            self._answer(request.url.partition(b"?")[0], request)
            if not self._busy and not self._keep_alive:
                self._close()

    def _answer(self, path: bytes, request: _Request) -> None:
        if path in _CHAT_PATHS:
            self._complete(request.body)
        elif path.startswith(b"/status/") and request.method == b"GET":
            self._write(
                self._board.status(path[8:].decode(errors="replace"), request.authorization)
            )
        elif path in _JOB_PATHS and request.method == b"POST":
            self._write(self._board.create(path, request.authorization, b"".join(request.body)))
        elif path in (b"/image_generate_stream", b"/image_generate"):
            self._takeoff(path, request)
        elif path == b"/health":
            self._write(json_response(200, {"status": "ok"}))
        elif path == b"/_bench/jobs":
            self._write(self._board.report())
        else:
            self._write(error_response(404, "not found"))

    def _takeoff(self, path: bytes, request: _Request) -> None:
        try:
            group = takeoff_consumer_group(request.content_type, request.body)
        except ValueError as exc:
            self._write(error_response(422, str(exc)))
            return
        if path == b"/image_generate":
            self._write(takeoff_reply(group))
            return
        shape = shape_of(group)
        self._busy = True
        self._write(_TAKEOFF_FRAMES.head)
        self._stream(_TAKEOFF_FRAMES, shape.chunks, shape.delay_s)

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
    board = JobBoard()
    server = await loop.create_server(
        lambda: MockProtocol(board), host, port, backlog=4096, reuse_address=True
    )
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
