"""The event loop: uvloop, whose servers keep up with waiting connections while the loop is busy.

uvloop's libuv accepts one connection per turn of the event loop (libuv pull request 3696).
While the loop is busy, each turn takes milliseconds: relaying 500 streams at once on one
worker, a turn took about 50 ms, and connections waited in the kernel's accept queue at 10 to
20 a second. A burst of 500 new connections waited up to 11 s for their first byte, and so
would a health probe on a new connection meanwhile.

So a server on a given socket catches up (`CatchUp`): when connections were still waiting
after the last turn, it takes one more for each millisecond that turn took (up to 128), and the
queue drains at about a thousand connections a second however busy the loop is. While turns
are short, accepting stays uvloop's own, one a turn. Workers sharing one listening socket
(`--workers N`) catch up by one for each 10 ms: a worker's own work on the first connection of
a burst makes its next turn a few milliseconds long, and taking the rest of the burst then
would leave the other workers none of it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import select
import socket
from collections.abc import Callable
from typing import Any

import uvloop

logger = logging.getLogger(__name__)

# While connections wait, one more is accepted for each this much of the turn they waited:
# by the one worker that has the listening socket, or by each of the workers that share it.
ACCEPT_EVERY_S = 0.001
SHARED_ACCEPT_EVERY_S = 0.01
# The most accepted in one turn: a flood of connections can't hold the loop for long.
ACCEPT_BATCH = 128
# How many worker processes share the listening socket (set by `python -m app`).
WORKERS_ENV = "GATEWAY_WORKERS"
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class CatchUpLoop(uvloop.Loop):
    """uvloop's loop, whose TCP servers on a given socket catch up with waiting connections.
    uvicorn makes its servers with `create_server`, the one method this loop changes: given
    a TCP socket to serve without TLS, the server's protocol factory becomes `CatchUp`."""

    def __init__(self) -> None:
        super().__init__()
        workers = os.environ.get(WORKERS_ENV, "1")
        shared = workers.isdigit() and int(workers) > 1
        self._accept_every_s = SHARED_ACCEPT_EVERY_S if shared else ACCEPT_EVERY_S

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
        if sock is not None and ssl is None and sock.family in (socket.AF_INET, socket.AF_INET6):
            protocol_factory = CatchUp(self, protocol_factory, sock, self._accept_every_s)
        # uvloop's stubs type a server by address and one on a socket apart; this is either.
        server: asyncio.AbstractServer = await super().create_server(
            protocol_factory,
            host,
            port,  # type: ignore[arg-type]
            sock=sock,  # type: ignore[arg-type]
            ssl=ssl,
            **options,
        )
        return server


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The gateway's event loop (what `python -m app` gives uvicorn as its `loop`)."""
    return CatchUpLoop()


class CatchUp:
    """The protocol factory of a server on `sock`. uvloop's server calls it for each
    connection it accepts, one a turn; when connections were left waiting the turn before,
    this accepts one more for each `every_s` since then and hands them to uvloop's transports,
    as the server hands its own."""

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
        sock.setblocking(False)  # uvloop makes it so too; accepting here must not wait
        self._every_s = every_s
        self._queue = select.poll()  # whether connections wait, without accepting one
        self._queue.register(sock.fileno(), select.POLLIN)
        self._left_waiting: float | None = None  # when connections were last left queued
        self._handing: set[asyncio.Task[Any]] = set()  # connections being handed over

    def __call__(self) -> asyncio.BaseProtocol:
        now = self._loop.time()
        if self._left_waiting is not None:
            more = min(ACCEPT_BATCH, int((now - self._left_waiting) / self._every_s)) - 1
            if more > 0:
                self._accept(more)
        self._left_waiting = now if self._queue.poll(0) else None
        return self._protocol_factory()

    def _accept(self, count: int) -> None:
        for _ in range(count):
            try:
                connection, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while it waited
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRORS:
                    return  # out of descriptors: uvloop's own accepting deals with that
                raise
            task = self._loop.create_task(
                self._loop.connect_accepted_socket(self._protocol_factory, connection)
            )
            self._handing.add(task)
            task.add_done_callback(self._handed)

    def _handed(self, task: asyncio.Task[Any]) -> None:
        self._handing.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.debug("a connection closed before it was served: %r", exc)
