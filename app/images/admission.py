"""Image work on worker threads, admitted by the memory it takes.

A decoded image can take hundreds of MB: counting threads bounds the CPU but not the memory.
So each piece of work says what it will hold at its peak (`cost`); it starts once a thread is
free and the work under way and its cost stay within `max_bytes`, in the order it came (work
that fits may pass work waiting for room).

A thread can't be stopped from outside. When a caller is cancelled (its client left, its
deadline passed), work still waiting never starts; work under way is told to stop (its
`threading.Event` is set, which a decode checks between two reads) and keeps its thread and
its bytes until it has really ended.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
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
    """At most `threads` pieces of work at once, holding at most `max_bytes` together (see
    the module's docstring)."""

    def __init__(self, threads: int, max_bytes: int) -> None:
        self._threads = threads
        self.max_bytes = max_bytes
        self._limiter = anyio.CapacityLimiter(threads)
        self._running = 0
        self._held = 0
        self._waiting: deque[_Waiter] = deque()

    @property
    def held(self) -> int:
        """Bytes the work under way holds."""
        return self._held

    async def run(self, cost: int, work: Work[T]) -> T:
        """`work(stop)` on a worker thread once admitted; `cost` is what it holds at its peak
        (never more than `max_bytes` is counted: the caller refuses larger work)."""
        cost = min(max(cost, 0), self.max_bytes)
        await self._admission(cost)
        stop = threading.Event()
        task = asyncio.ensure_future(self._on_thread(work, stop, cost))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            stop.set()  # nobody waits for it any more
            task.add_done_callback(_unread)
            raise

    async def _on_thread(self, work: Work[T], stop: threading.Event, cost: int) -> T:
        try:
            return await anyio.to_thread.run_sync(work, stop, limiter=self._limiter)
        finally:
            self._release(cost)

    async def _admission(self, cost: int) -> None:
        if not self._waiting and self._fits(cost):
            self._take(cost)
            return
        waiter = _Waiter(cost)
        self._waiting.append(waiter)
        self._dispatch()  # others wait, yet this one may fit beside what runs
        try:
            await waiter.admitted
        except asyncio.CancelledError:
            if waiter.admitted.done() and not waiter.admitted.cancelled():
                self._release(cost)  # admitted as the caller left: give it back
            elif waiter in self._waiting:
                self._waiting.remove(waiter)
            raise

    def _fits(self, cost: int) -> bool:
        return self._running < self._threads and self._held + cost <= self.max_bytes

    def _take(self, cost: int) -> None:
        self._running += 1
        self._held += cost

    def _release(self, cost: int) -> None:
        self._running -= 1
        self._held -= cost
        self._dispatch()

    def _dispatch(self) -> None:
        """Admit waiting work, in the order it came, as long as each fits."""
        for waiter in list(self._waiting):
            if waiter.admitted.done():  # its caller left: forget it
                self._waiting.remove(waiter)
            elif self._fits(waiter.cost):
                self._waiting.remove(waiter)
                self._take(waiter.cost)
                waiter.admitted.set_result(None)


def _unread(task: asyncio.Future[T]) -> None:
    """Mark the outcome of work whose caller left as read: it was, by nobody."""
    if not task.cancelled():
        task.exception()
