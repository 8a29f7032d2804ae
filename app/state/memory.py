"""State for a single process, kept in a dict."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from app.state.base import Hit

T = TypeVar("T")


class MemoryState:
    """Entries expire lazily; the table is bounded so that no key pattern can grow it forever."""

    name = "memory"

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._values: dict[str, tuple[str, float]] = {}
        self._counters: dict[str, tuple[int, float]] = {}
        self._max_entries = max_entries
        self._clock = clock

    async def get(self, key: str) -> str | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires <= self._clock():
            del self._values[key]
            return None
        return value

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        self._make_room(self._values)
        self._values[key] = (value, self._clock() + ttl_s)

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)
        self._counters.pop(key, None)

    async def hit(self, key: str, window_s: float, amount: int = 1) -> Hit:
        now = self._clock()
        count, expires = self._counters.get(key, (0, 0.0))
        if expires <= now:
            self._make_room(self._counters)
            count, expires = 0, now + window_s
        self._counters[key] = (count + amount, expires)
        return Hit(count + amount, expires - now)

    def _make_room(self, table: dict[str, tuple[T, float]]) -> None:
        if len(table) < self._max_entries:
            return
        now = self._clock()
        for key in [k for k, (_, expires) in table.items() if expires <= now]:
            del table[key]
        while len(table) >= self._max_entries:
            del table[next(iter(table))]

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._values.clear()
        self._counters.clear()
