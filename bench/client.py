"""A light HTTP/1.1 keep-alive client on raw asyncio transports that times SSE streams."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast

import httptools

from bench.framing import Framing, count, missing_end


@dataclass(slots=True)
class Exchange:
    """One request and what came back: status, timings and, for streams, the events (`[DONE]`
    aside), how many of them carried content (`tokens`), and whether the end marker came."""

    started: float
    status: int = 0
    finished: float | None = None
    first_token: float | None = None
    events: int = 0
    tokens: int = 0
    done: bool = False
    error: str | None = None
    body: bytearray = field(default_factory=bytearray)

    @property
    def latency_s(self) -> float:
        return (self.finished or self.started) - self.started

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.started


def build_request(
    host: str,
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str],
    content_type: str = "application/json",
) -> bytes:
    """A complete `POST` request, ready to be written as is for every exchange."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def build_get(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


class Connection(asyncio.Protocol):
    """One keep-alive connection that runs one exchange at a time; `framing` says how its
    streams are read (`bench/framing.py`)."""

    def __init__(
        self, *, streaming: bool, keep_body: bool = False, framing: Framing = "chat"
    ) -> None:
        self._streaming = streaming
        self._keep_body = keep_body
        self._framing: Framing = framing
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._exchange: Exchange | None = None
        self._waiter: asyncio.Future[Exchange] | None = None
        self._pending = b""
        self.closed = False

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        streaming: bool,
        keep_body: bool = False,
        framing: Framing = "chat",
    ) -> Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: cls(streaming=streaming, keep_body=keep_body, framing=framing), host, port
        )
        return protocol

    async def send(self, request: bytes) -> Exchange:
        """Write `request` and wait for the whole response."""
        if self._transport is None or self.closed:
            raise ConnectionError("the connection is closed")
        self._exchange = Exchange(started=time.perf_counter())
        self._pending = b""
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._transport = None
        self._fail(f"connection lost mid-response: {exc or 'closed by the server'}")

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"malformed response: {exc}")
            self.close()

    def on_headers_complete(self) -> None:
        if self._exchange is not None:
            self._exchange.status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        exchange = self._exchange
        if exchange is None:
            return
        if self._keep_body:
            exchange.body += body
        if self._streaming:
            self._scan(exchange, body)

    def on_message_complete(self) -> None:
        exchange, waiter = self._exchange, self._waiter
        self._exchange = self._waiter = None
        if exchange is None or waiter is None or waiter.done():
            return
        exchange.finished = time.perf_counter()
        if self._streaming and exchange.status == 200 and not exchange.done:
            exchange.error = exchange.error or missing_end(self._framing)
        waiter.set_result(exchange)
        if not self._parser.should_keep_alive():
            self.close()

    def _scan(self, exchange: Exchange, body: bytes) -> None:
        if b"\r" in body:
            body = body.replace(b"\r\n", b"\n")
        pending = self._pending + body
        if b"\n\n" not in pending:
            self._pending = pending
            return
        events = pending.split(b"\n\n")
        self._pending = events.pop()
        count(self._framing, exchange, events)

    def _fail(self, reason: str) -> None:
        exchange, waiter = self._exchange, self._waiter
        self._exchange = self._waiter = None
        if exchange is not None and waiter is not None and not waiter.done():
            exchange.error = reason
            exchange.finished = time.perf_counter()
            waiter.set_result(exchange)
