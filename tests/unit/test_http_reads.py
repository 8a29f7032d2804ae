"""Reads into the worker's shared buffer: each connection's protocol gets its own bytes, in
order, as views of that buffer, however the loop interleaves connections."""

from __future__ import annotations

import asyncio
import os

import pytest
import uvloop

from app.server.reads import BufferedReads


class Recording(asyncio.Protocol):
    """What the HTTP protocol would see of its connection."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.views = 0
        self.closed: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes | memoryview) -> None:
        self.views += isinstance(data, memoryview) and data.obj is BufferedReads._buffer.obj
        self.received += data

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set_result(exc)


async def send_all(port: int, data: bytes) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    for at in range(0, len(data), 100_003):  # pieces of odd sizes, drained one by one
        writer.write(data[at : at + 100_003])
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def four_connections() -> None:
    made: list[Recording] = []

    def connection() -> BufferedReads:
        made.append(Recording())
        return BufferedReads(made[-1])

    server = await asyncio.get_running_loop().create_server(connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sent = [os.urandom(1_500_000 + n) for n in range(4)]
    async with server:
        await asyncio.gather(*(send_all(port, data) for data in sent))
        await asyncio.gather(*(protocol.closed for protocol in made))
    assert sorted(bytes(p.received) for p in made) == sorted(sent)
    assert all(p.views > 1 for p in made)  # read in several pieces, all in the shared buffer


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_each_connection_gets_its_own_bytes_in_order(loop: str) -> None:
    (uvloop.run if loop == "uvloop" else asyncio.run)(four_connections())
