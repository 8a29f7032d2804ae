"""The loop's servers: connections left waiting by a long turn of the loop are caught up with in
the next, a few turns for a burst of them; while turns are short, one is accepted a turn, as
uvloop does, so that workers sharing a socket share a burst."""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from app.server.listener import WORKERS_ENV, new_event_loop

T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main())


class Turns:
    """Counts the turns of the running loop: a callback that schedules itself again each turn,
    and holds the loop for `busy_s` each time, as relaying hundreds of streams does."""

    def __init__(self, loop: asyncio.AbstractEventLoop, busy_s: float = 0.0) -> None:
        self.count = 0
        self._loop = loop
        self._busy_s = busy_s
        self._handle = loop.call_soon(self._turn)

    def _turn(self) -> None:
        self.count += 1
        began = time.perf_counter()
        while time.perf_counter() - began < self._busy_s:
            pass
        self._handle = self._loop.call_soon(self._turn)

    def stop(self) -> None:
        self._handle.cancel()


class Recorder(asyncio.Protocol):
    """Notes the turn each connection was handed over in, and echoes what it reads; `all_made`
    is set once `expected` connections were."""

    def __init__(self, made: list[int], turns: Turns, all_made: asyncio.Event, expected: int):
        self._made, self._turns, self._all_made, self._expected = made, turns, all_made, expected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._made.append(self._turns.count)
        self._transport = transport
        if len(self._made) == self._expected:
            self._all_made.set()

    def data_received(self, data: bytes) -> None:
        self._transport.write(data)  # type: ignore[attr-defined]


async def burst(
    count: int, *, busy_s: float, sock: socket.socket | None = None
) -> tuple[list[int], int]:
    """Serve `sock` (a fresh one by default) on the running loop, turns `busy_s` long, while
    `count` connections arrive at once; the turn each was handed over in, and the turn they
    arrived in. Every connection is then checked to be served: what it sends comes back."""
    loop = asyncio.get_running_loop()
    turns = Turns(loop, busy_s)
    made: list[int] = []
    all_made = asyncio.Event()
    if sock is None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
    server = await loop.create_server(
        lambda: Recorder(made, turns, all_made, count), sock=sock, backlog=count
    )
    clients = []
    for _ in range(count):  # each handshake is done by the kernel: they all wait at once
        client = socket.create_connection(sock.getsockname())
        client.setblocking(False)
        clients.append(client)
    first = turns.count
    async with asyncio.timeout(10):
        await all_made.wait()
    for client in clients:
        await loop.sock_sendall(client, b"ping")
        assert await loop.sock_recv(client, 4) == b"ping"
        client.close()
    turns.stop()
    server.close()
    await server.wait_closed()
    return made, first


def test_a_busy_loop_takes_a_burst_of_connections_within_a_few_turns() -> None:
    made, first = run(lambda: burst(100, busy_s=0.01))

    assert len(made) == 100
    # 10 ms turns: about 10 a turn. uvloop alone takes one a turn: 100 turns.
    assert max(made) - first <= 20


def test_workers_sharing_the_socket_catch_up_by_one_per_10_ms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker's turn made long by its own first connection must not take the whole burst:
    the other workers sharing the socket get their part of it."""
    monkeypatch.setenv(WORKERS_ENV, "2")

    made, first = run(lambda: burst(20, busy_s=0.01))

    assert len(made) == 20
    assert max(made) - first >= 8  # one or two a turn, not ten


def test_an_idle_loop_takes_one_connection_a_turn() -> None:
    made, _ = run(lambda: burst(20, busy_s=0.0))

    assert len(set(made)) >= 15  # nearly one a turn


def test_out_of_descriptors_while_catching_up_leaves_the_rest_to_uvloop() -> None:
    class Starved(socket.socket):
        """Accepting here fails as with no descriptors left; uvloop's own accepting, on the
        same socket, does not."""

        def accept(self) -> tuple[socket.socket, Any]:
            raise OSError(errno.EMFILE, "Too many open files")

    sock = Starved()
    sock.bind(("127.0.0.1", 0))

    made, first = run(lambda: burst(10, busy_s=0.01, sock=sock))

    assert len(made) == 10
    assert max(made) - first >= 9  # one a turn: nothing was caught up with


def test_servers_by_address_are_uvloop_s_own() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        served = asyncio.Event()

        class Served(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: ARG002
                served.set()

        server = await loop.create_server(Served, "127.0.0.1", 0)
        client = socket.create_connection(server.sockets[0].getsockname()[:2])
        async with asyncio.timeout(5):
            await served.wait()
        client.close()
        server.close()
        await server.wait_closed()

    run(main)
