"""The event loop: uvloop, with servers that keep up with waiting connections while busy.

uvloop's libuv accepts one connection per turn of the event loop (libuv pull request 3696).
While the loop is busy, each turn takes milliseconds: relaying 500 streams at once on one
worker, a turn took about 50 ms, and connections waited in the kernel's accept queue at 10 to
20 a second. A burst of 500 new connections waited up to 11 s for their first byte, and so
would a health probe on a new connection meanwhile.

A `Listener` accepts one connection per turn, as libuv does, while turns are short. When
connections are still waiting after a long turn, it accepts one for each millisecond that
turn took (up to 128), so the queue drains at about a thousand connections a second however
busy the loop is. Workers sharing one listening socket (`--workers N`) accept one for each
10 ms instead: a worker's own work on the first connection of a burst makes its next turn a
few milliseconds long, and taking the rest of the burst then would leave the other workers
without any of it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

logger = logging.getLogger(__name__)

# While connections wait, one is accepted per this much time since the last were: by the one
# worker that has the listening socket, or by each of the workers that share it.
ACCEPT_EVERY_S = 0.001
SHARED_ACCEPT_EVERY_S = 0.01
# How many worker processes share the listening socket (set by `python -m app`).
WORKERS_ENV = "GATEWAY_WORKERS"
# The most accepted in one turn: a flood of connections can't hold the loop for long.
ACCEPT_BATCH = 128
# After running out of file descriptors or memory, accepting resumes this much later.
ACCEPT_RETRY_S = 1.0
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class GatewayLoop(uvloop.Loop):
    """uvloop, whose TCP servers on a given socket are `Listener`s (TLS ones stay uvloop's)."""

    accept_every_s = ACCEPT_EVERY_S

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        *,
        sock: socket.socket | None = None,
        ssl: Any = None,
        **options: Any,
    ) -> asyncio.AbstractServer:
        if sock is None or ssl is not None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            create: Callable[..., Awaitable[asyncio.AbstractServer]] = super().create_server
            return await create(protocol_factory, host, port, sock=sock, ssl=ssl, **options)
        sock.listen(options.get("backlog", 100))
        return Listener(self, protocol_factory, sock, self.accept_every_s)


def new_event_loop() -> GatewayLoop:
    loop = GatewayLoop()
    workers = os.environ.get(WORKERS_ENV, "1")
    if workers.isdigit() and int(workers) > 1:
        loop.accept_every_s = SHARED_ACCEPT_EVERY_S
    return loop


class Listener(asyncio.AbstractServer):
    """A listening TCP socket served on the loop: each time it is readable, waiting
    connections are accepted (one, or one per `every_s` they have waited, up to
    `ACCEPT_BATCH`) and handed to uvloop's transports, as its own server would hand them."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        every_s: float,
    ) -> None:
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._sock = sock
        self._every_s = every_s
        self._serving = False
        self._retry: asyncio.TimerHandle | None = None
        self._handing: set[asyncio.Task[Any]] = set()  # connections being handed over
        self._left_waiting: float | None = None  # when connections were last left queued
        self._closed = loop.create_future()
        sock.setblocking(False)
        self._start()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._sock.fileno() < 0 else (self._sock,)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        """Accepting starts as the listener is made: nothing to do."""

    async def serve_forever(self) -> None:
        await asyncio.shield(self._closed)

    def close(self) -> None:
        """Stop accepting; connections already accepted go on."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._serving:
            self._loop.remove_reader(self._sock.fileno())
            self._serving = False
        self._sock.close()
        if not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        if self._handing:
            await asyncio.wait(self._handing)

    def _start(self) -> None:
        self._retry = None
        if self._sock.fileno() >= 0:
            self._loop.add_reader(self._sock.fileno(), self._accept)
            self._serving = True

    def _accept(self) -> None:
        now = self._loop.time()
        count = 1
        if self._left_waiting is not None:
            waited = int((now - self._left_waiting) / self._every_s)
            count = min(ACCEPT_BATCH, max(1, waited))
        self._left_waiting = now  # unless the queue runs out below
        for _ in range(count):
            try:
                connection, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                self._left_waiting = None
                return
            except ConnectionAbortedError:
                continue  # the client gave up while it waited
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                # Out of descriptors or memory: what waits stays queued, and a later retry
                # takes it once connections have closed.
                logger.error(
                    "cannot accept connections (%s); retrying in %g s", exc, ACCEPT_RETRY_S
                )
                self._loop.remove_reader(self._sock.fileno())
                self._serving = False
                self._retry = self._loop.call_later(ACCEPT_RETRY_S, self._start)
                return
            connection.setblocking(False)
            task = self._loop.create_task(
                self._loop.connect_accepted_socket(self._protocol_factory, connection)
            )
            self._handing.add(task)
            task.add_done_callback(self._handed)

    def _handed(self, task: asyncio.Task[Any]) -> None:
        self._handing.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.debug("a connection closed before it was served: %r", exc)
