"""Image work on worker threads, admitted by the memory it takes and shared fairly by clients.

A decoded image can take hundreds of MB, and one client may send many: counting threads
bounds the CPU but not the memory, and a first-come queue lets one client's images keep every
other client waiting. So each piece of work says what it will hold at its peak (`cost`); it
starts once a thread is free, the work under way and its cost stay within `max_bytes`, and
its client's work stays within `per_client_bytes` (a client with nothing under way may always
start one piece). Waiting clients take turns, one piece each.

A thread can't be stopped from outside. When a caller is cancelled (its client left, its
deadline passed), work still waiting never starts; work under way is told to stop (its
`threading.Event` is set, which a decode checks between two reads) and keeps its thread and
its bytes until it has really ended.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")
Work = Callable[[threading.Event], T]


@dataclass
class _Waiter:
    cost: int
    admitted: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Conversions:
    """At most `threads` pieces of work at once, holding at most `max_bytes` together and
    `per_client_bytes` for one client, clients taking turns (see the module's docstring)."""

    def __init__(self, threads: int, max_bytes: int, per_client_bytes: int) -> None:
        self._threads = threads
        self.max_bytes = max_bytes
        self._per_client = per_client_bytes
        self._limiter = anyio.CapacityLimiter(threads)
        self._running = 0
        self._held = 0
        self._by_client: dict[str, tuple[int, int]] = {}  # pieces under way, their bytes
        self._waiting: OrderedDict[str, deque[_Waiter]] = OrderedDict()  # in turn order

    @property
    def held(self) -> int:
        """Bytes the work under way holds."""
        return self._held

    async def run(self, client: str, cost: int, work: Work[T]) -> T:
        """`work(stop)` on a worker thread once admitted; `cost` is what it holds at its peak
        (never more than `max_bytes` is counted: the caller refuses larger work)."""
        cost = min(max(cost, 0), self.max_bytes)
        await self._admission(client, cost)
        stop = threading.Event()
        task = asyncio.ensure_future(self._on_thread(work, stop, client, cost))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            stop.set()  # nobody waits for it any more
            task.add_done_callback(_unread)
            raise

    async def _on_thread(self, work: Work[T], stop: threading.Event, client: str, cost: int) -> T:
        try:
            return await anyio.to_thread.run_sync(work, stop, limiter=self._limiter)
        finally:
            self._release(client, cost)

    async def _admission(self, client: str, cost: int) -> None:
        if not self._waiting and self._fits(client, cost):
            self._take(client, cost)
            return
        waiter = _Waiter(cost)
        self._waiting.setdefault(client, deque()).append(waiter)
        self._dispatch()  # others wait, yet this one may fit beside what runs
        try:
            await waiter.admitted
        except asyncio.CancelledError:
            if waiter.admitted.done() and not waiter.admitted.cancelled():
                self._release(client, cost)  # admitted as the caller left: give it back
            else:
                self._forget(client, waiter)
            raise

    def _fits(self, client: str, cost: int) -> bool:
        if self._running >= self._threads or self._held + cost > self.max_bytes:
            return False
        pieces, held = self._by_client.get(client, (0, 0))
        return pieces == 0 or held + cost <= self._per_client

    def _take(self, client: str, cost: int) -> None:
        self._running += 1
        self._held += cost
        pieces, held = self._by_client.get(client, (0, 0))
        self._by_client[client] = (pieces + 1, held + cost)

    def _release(self, client: str, cost: int) -> None:
        self._running -= 1
        self._held -= cost
        pieces, held = self._by_client[client]
        if pieces > 1:
            self._by_client[client] = (pieces - 1, held - cost)
        else:
            del self._by_client[client]
        self._dispatch()

    def _dispatch(self) -> None:
        """Admit waiting work, clients in turn: the first whose next piece fits goes, then
        to the back of the line."""
        admitted = True
        while admitted and self._waiting:
            admitted = False
            for client, queue in list(self._waiting.items()):
                while queue and queue[0].admitted.done():  # its caller left: forget it
                    queue.popleft()
                if not queue:
                    del self._waiting[client]
                    admitted = True
                    break
                if self._fits(client, queue[0].cost):
                    waiter = queue.popleft()
                    if queue:
                        self._waiting.move_to_end(client)
                    else:
                        del self._waiting[client]
                    self._take(client, waiter.cost)
                    waiter.admitted.set_result(None)
                    admitted = True
                    break

    def _forget(self, client: str, waiter: _Waiter) -> None:
        queue = self._waiting.get(client)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[client]


def _unread(task: asyncio.Future[T]) -> None:
    """Mark the outcome of work whose caller left as read: it was, by nobody."""
    if not task.cancelled():
        task.exception()
