"""The loop's listener: waiting connections are all accepted in the turn that finds them, even
while every turn of the loop is long; running out of descriptors pauses accepting, not the loop."""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from app import listener
from app.listener import (
    ACCEPT_EVERY_S,
    SHARED_ACCEPT_EVERY_S,
    WORKERS_ENV,
    GatewayLoop,
    Listener,
    new_event_loop,
)

CONNECTIONS = 100
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


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def connect_all(port: int, count: int) -> list[socket.socket]:
    """`count` connections whose handshakes the kernel completes before anyone accepts them."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port))
        client.setblocking(False)
        clients.append(client)
    return clients


def test_a_busy_loop_accepts_a_burst_of_connections_within_a_few_turns() -> None:
    async def main() -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, GatewayLoop)
        turns = Turns(loop, busy_s=0.01)
        made: list[int] = []
        all_made = asyncio.Event()
        sock = listening_socket()
        server = await loop.create_server(
            lambda: Recorder(made, turns, all_made, CONNECTIONS), sock=sock, backlog=256
        )
        assert isinstance(server, Listener)
        clients = connect_all(sock.getsockname()[1], CONNECTIONS)
        first = turns.count
        async with asyncio.timeout(10):
            await all_made.wait()
        # Every connection is served: what a client sends comes back.
        for client in clients:
            await loop.sock_sendall(client, b"ping")
            assert await loop.sock_recv(client, 4) == b"ping"
        turns.stop()
        for client in clients:
            client.close()
        server.close()
        await server.wait_closed()
        return made, first

    made, first = run(main)

    assert len(made) == CONNECTIONS
    # 10 ms turns: about 10 a turn. uvloop's own server takes one a turn, 100 turns.
    assert max(made) - first <= 20


def test_workers_sharing_the_socket_accept_one_per_10_ms_of_a_busy_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker's turn made long by its own first connection must not take the whole burst:
    the other workers sharing the socket get their part of it."""
    monkeypatch.setenv(WORKERS_ENV, "2")

    async def main() -> tuple[float, list[int], int]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, GatewayLoop)
        turns = Turns(loop, busy_s=0.01)
        made: list[int] = []
        all_made = asyncio.Event()
        sock = listening_socket()
        server = await loop.create_server(
            lambda: Recorder(made, turns, all_made, 20), sock=sock, backlog=64
        )
        clients = connect_all(sock.getsockname()[1], 20)
        first = turns.count
        async with asyncio.timeout(10):
            await all_made.wait()
        turns.stop()
        for client in clients:
            client.close()
        server.close()
        return loop.accept_every_s, made, first

    every_s, made, first = run(main)

    assert every_s == SHARED_ACCEPT_EVERY_S > ACCEPT_EVERY_S
    assert max(made) - first >= 8  # one or two a turn, not ten


def test_an_idle_loop_accepts_one_connection_a_turn() -> None:
    """So that workers sharing the listening socket take turns with a burst."""

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        turns = Turns(loop)
        made: list[int] = []
        all_made = asyncio.Event()
        sock = listening_socket()
        server = await loop.create_server(
            lambda: Recorder(made, turns, all_made, 20), sock=sock, backlog=64
        )
        clients = connect_all(sock.getsockname()[1], 20)
        async with asyncio.timeout(10):
            await all_made.wait()
        turns.stop()
        for client in clients:
            client.close()
        server.close()
        return made

    made = run(main)

    assert len(set(made)) >= 15  # nearly one a turn


def test_accepting_pauses_while_descriptors_run_out_then_resumes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(listener, "ACCEPT_RETRY_S", 0.05)
    failures = [OSError(errno.EMFILE, "Too many open files")]

    class Starved(socket.socket):
        def accept(self) -> tuple[socket.socket, Any]:
            if failures:
                raise failures.pop()
            return super().accept()

    async def main() -> tuple[int, bool, bool]:
        loop = asyncio.get_running_loop()
        turns = Turns(loop)
        made: list[int] = []
        all_made = asyncio.Event()
        sock = Starved()
        sock.bind(("127.0.0.1", 0))
        server = await loop.create_server(lambda: Recorder(made, turns, all_made, 1), sock=sock)
        (client,) = connect_all(sock.getsockname()[1], 1)
        await asyncio.sleep(0.01)
        paused = not server.is_serving()
        async with asyncio.timeout(5):
            await all_made.wait()
        turns_meanwhile = turns.count
        turns.stop()
        client.close()
        server.close()
        return turns_meanwhile, paused, server.is_serving()

    turns_meanwhile, paused, serving_after_close = run(main)

    assert paused  # the listener stopped watching the socket instead of failing each turn
    assert turns_meanwhile > 10  # and the loop went on meanwhile
    assert not serving_after_close
    assert "cannot accept connections" in caplog.text


def test_a_closed_listener_refuses_new_connections() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = listening_socket()
        port = sock.getsockname()[1]
        server = await loop.create_server(asyncio.Protocol, sock=sock)
        server.close()
        await server.wait_closed()
        assert server.sockets == ()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1)

    run(main)


def test_tls_and_address_servers_stay_uvloop_s() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        assert not isinstance(server, Listener)
        assert server.sockets
        server.close()
        await server.wait_closed()

    run(main)
