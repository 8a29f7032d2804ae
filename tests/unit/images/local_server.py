"""A scripted HTTP/1.1 server on 127.0.0.1 for the fetcher: hit counts, redirects, slow and
endless bodies. It runs as tasks on the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable

REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 307: "Temporary Redirect"}


class Exchange:
    """One request on one connection, and the means to answer it."""

    def __init__(self, server: LocalServer, path: str, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.path = path
        self._writer = writer

    async def send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()
        self.server.body_bytes_sent += len(data)

    async def send_head(self, status: int, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await self._writer.drain()

    async def respond(self, status: int, body: bytes = b"", **headers: str) -> None:
        await self.send_head(status, {"Content-Length": str(len(body)), **headers})
        await self.send(body)

    async def redirect(self, location: str, status: int = 302) -> None:
        await self.respond(status, Location=location)

    async def send_chunked(self, chunks: list[bytes]) -> None:
        await self.send_head(200, {"Content-Type": "image/png", "Transfer-Encoding": "chunked"})
        for chunk in chunks:
            self._writer.write(f"{len(chunk):x}\r\n".encode())
            await self.send(chunk)
            self._writer.write(b"\r\n")
        self._writer.write(b"0\r\n\r\n")
        await self._writer.drain()


Route = Callable[[Exchange], Awaitable[None]]


class LocalServer:
    """Serves `routes` by path (query strings ignored); anything else is a 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.body_bytes_sent = 0
        self.client_went_away = asyncio.Event()
        self._connections: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode("latin-1").split("?", 1)[0]
            self.hits[path] += 1
            await self.routes.get(path, _not_found)(Exchange(self, path, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            self.client_went_away.set()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _not_found(exchange: Exchange) -> None:
    await exchange.respond(404, b"no such image")
