"""State for a single process, kept in a dict."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from app.state.base import Admission, Count, Hit, Option, Quota

T = TypeVar("T")


SWEEP_INTERVAL_S = 1.0


@dataclass
class _Ledger:
    """One quota's counted entries: each one's size and expiry, their total, and a heap of
    expiries (one per write; an entry extended since leaves a stale one behind)."""

    entries: dict[str, tuple[int, float]] = field(default_factory=dict)
    expiries: list[tuple[float, str]] = field(default_factory=list)
    total: int = 0

    def put(self, key: str, size: int, expires: float) -> None:
        self.total += size - self.entries.get(key, (0, 0.0))[0]
        self.entries[key] = (size, expires)
        heapq.heappush(self.expiries, (expires, key))
        if len(self.expiries) > 2 * len(self.entries) + 64:  # mostly stale: start afresh
            self.expiries = [(when, name) for name, (_, when) in self.entries.items()]
            heapq.heapify(self.expiries)

    def pop(self, key: str) -> None:
        self.total -= self.entries.pop(key, (0, 0.0))[0]

    def expired(self, now: float) -> list[str]:
        """Forget the entries whose time has come, whatever order they were written in."""
        gone = []
        while self.expiries and self.expiries[0][0] <= now:
            expires, key = heapq.heappop(self.expiries)
            entry = self.entries.get(key)
            if entry is not None and entry[1] == expires:  # else extended, or gone already
                self.pop(key)
                gone.append(key)
        return gone


class MemoryState:
    """Entries expire lazily; the table is bounded so that no key pattern can grow it forever."""

    name = "memory"

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._values: dict[str, tuple[str, float]] = {}
        self._counters: dict[str, tuple[int, float]] = {}
        self._ledgers: dict[str, _Ledger] = {}  # by quota name
        self._max_entries = max_entries
        self._clock = clock
        self._swept_at = float("-inf")

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

    async def admit(self, count: Count | None, options: Sequence[Option]) -> Admission:
        # Nothing here awaits anything that yields, so the steps are one atomic step. One
        # process has nothing to lend to.
        first = None
        if count is not None:
            first = await self.hit(count.key, count.window_s, count.amount)
            if first.count > count.limit:
                return Admission(first)
        resting = tuple([await self.get(option.resting_key) is not None for option in options])
        if not options:
            return Admission(first)
        chosen = resting.index(False) if False in resting else 0
        counted = options[chosen].count
        chosen_hit = None
        if counted is not None:
            chosen_hit = await self.hit(counted.key, counted.window_s, counted.amount)
        return Admission(first, resting, chosen, chosen_hit)

    async def set_counted(
        self, key: str, value: str, ttl_s: float, quotas: Sequence[Quota]
    ) -> bool:
        ledgers = [self._ledger(quota) for quota in quotas]
        size = len(value.encode())
        for ledger, quota in zip(ledgers, quotas, strict=True):
            if ledger.total - ledger.entries.get(key, (0, 0.0))[0] + size > quota.max_bytes:
                return False
        expires = self._clock() + ttl_s
        for ledger in ledgers:
            ledger.put(key, size, expires)
        self._make_room(self._values)
        self._values[key] = (value, expires)
        return True

    async def extend_counted(self, key: str, ttl_s: float, quotas: Sequence[Quota]) -> bool:
        ledgers = [self._ledger(quota) for quota in quotas]
        if key not in ledgers[0].entries or await self.get(key) is None:
            return False
        size = ledgers[0].entries[key][0]
        for ledger, quota in zip(ledgers[1:], quotas[1:], strict=True):
            if key not in ledger.entries and ledger.total + size > quota.max_bytes:
                return False
        expires = self._clock() + ttl_s
        for ledger in ledgers:
            ledger.put(key, size, expires)
        self._values[key] = (self._values[key][0], expires)
        return True

    async def delete_counted(self, key: str, quotas: Sequence[Quota]) -> bool:
        ledgers = [self._ledger(quota) for quota in quotas]
        existed = key in ledgers[0].entries
        for ledger in ledgers:
            ledger.pop(key)
        self._values.pop(key, None)
        return existed

    async def counted_bytes(self, quota: Quota) -> int:
        return self._ledger(quota).total

    def _ledger(self, quota: Quota) -> _Ledger:
        """The quota's ledger, its expired entries dropped (values and bytes alike)."""
        ledger = self._ledgers.setdefault(quota.name, _Ledger())
        now = self._clock()
        for key in ledger.expired(now):
            entry = self._values.get(key)
            if entry is not None and entry[1] <= now:
                del self._values[key]
        return ledger

    def _make_room(self, table: dict[str, tuple[T, float]]) -> None:
        if len(table) < self._max_entries:
            return
        # A full table is swept of expired entries at most once a second: a sweep walks all
        # of it, and a table full of live entries would otherwise be walked on every write.
        now = self._clock()
        if now - self._swept_at >= SWEEP_INTERVAL_S:
            self._swept_at = now
            for key in [k for k, (_, expires) in table.items() if expires <= now]:
                del table[key]
        while len(table) >= self._max_entries:
            del table[next(iter(table))]

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._values.clear()
        self._counters.clear()
        self._ledgers.clear()
