"""A stall watchdog for long streams: one timer for the whole stream, not one per chunk."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType


class StallWatchdog:
    """Within `with StallWatchdog(limit_s) as watch:`, each step bracketed by
    `watch.waiting()` and `watch.resumed()` must finish within `limit_s`, or the task is
    cancelled and the block raises `on_stall()`: `TimeoutError` by default, as
    `asyncio.timeout` would.

    Time between steps (the consumer writing a chunk to a slow client) is not counted.
    `asyncio.timeout` around each step costs a timer handle per chunk; here a single timer
    re-arms itself, at most once per `limit_s`.
    """

    def __init__(
        self, limit_s: float, on_stall: Callable[[], BaseException] = TimeoutError
    ) -> None:
        self.limit_s = limit_s
        self._on_stall = on_stall
        self._waiting_since: float | None = None
        self._expired = False

    def __enter__(self) -> StallWatchdog:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("StallWatchdog must be used inside a task")
        self._task = task
        self._timer = self._loop.call_later(self.limit_s, self._check)
        return self

    def waiting(self) -> None:
        self._waiting_since = self._loop.time()

    def resumed(self) -> None:
        self._waiting_since = None

    def _check(self) -> None:
        now = self._loop.time()
        since = self._waiting_since
        if since is not None and now - since >= self.limit_s:
            self._expired = True
            self._task.cancel()
            return
        self._timer = self._loop.call_at(
            (now if since is None else since) + self.limit_s, self._check
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        if self._expired and exc_type is asyncio.CancelledError and self._task.uncancel() == 0:
            raise self._on_stall() from exc
