"""Blocking work on worker threads, a bounded number at a time, while the event loop serves
other requests: parsing large bodies, converting images, encoding stored responses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")


class WorkerThreads:
    """Runs work on anyio's worker threads, at most `limit` pieces of it at once.

    A thread can't be stopped. When the caller is cancelled (its client left, its deadline
    passed), work still waiting for its turn never starts, and work under way keeps its place
    until it ends: the limit always counts every thread busy with it. anyio keeps that for its
    own cancel scopes, but not for `Task.cancel()`, which is how a request's task is cancelled
    here: the caller's place would be given up while its thread works on."""

    def __init__(self, limit: int) -> None:
        self._limiter = anyio.CapacityLimiter(limit)

    async def run(self, work: Callable[[], T]) -> T:
        """`work()` on a worker thread, once a place is free."""
        limiter, scope = self._limiter, anyio.CancelScope()

        async def in_scope() -> T:
            with scope:
                return await anyio.to_thread.run_sync(work, limiter=limiter)
            raise asyncio.CancelledError  # the caller is gone: nobody reads this

        task = asyncio.ensure_future(in_scope())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # Cancelled through anyio: a place not yet taken is given up, a thread already
            # working is waited for.
            scope.cancel()
            task.add_done_callback(_unread)
            raise


def _unread(task: asyncio.Future[T]) -> None:
    """Mark the outcome of work whose caller left as read: it was, by nobody."""
    if not task.cancelled():
        task.exception()
