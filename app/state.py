"""Shared state: what workers and replicas must agree on (upload cache, counters, cooldowns)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class StateBackend(Protocol):
    """A small key-value store with expiry. `memory` serves one process; Redis serves many."""

    name: str

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_s: float) -> None: ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


class MemoryState:
    """State for a single process; entries expire lazily and the table is bounded."""

    name = "memory"

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: dict[str, tuple[str, float]] = {}
        self._max_entries = max_entries
        self._clock = clock

    async def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        return value

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        if len(self._entries) >= self._max_entries:
            self._evict()
        self._entries[key] = (value, self._clock() + ttl_s)

    def _evict(self) -> None:
        now = self._clock()
        for key in [k for k, (_, expires) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._entries.clear()
