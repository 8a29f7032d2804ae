"""State for a single process, kept in a dict."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.state.base import ENTRY_COST, Admission, Count, Hit, Option, Quota

T = TypeVar("T", str, int)


SWEEP_INTERVAL_S = 1.0


class _Table(Generic[T]):
    """Entries and their expiries, as two dicts of plain strings and numbers rather than one
    of tuples: the garbage collector tracks no such dict, so a table of 100,000 entries costs
    its collections nothing, where tuples had each full collection walk all of them (40 to 80
    ms, with the event loop waiting)."""

    def __init__(self) -> None:
        self.values: dict[str, T] = {}
        self.expires: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def get(self, key: str, now: float) -> T | None:
        """The entry's value while it lives; an expired one is dropped."""
        expires = self.expires.get(key)
        if expires is None:
            return None
        if expires <= now:
            self.pop(key)
            return None
        return self.values[key]

    def put(self, key: str, value: T, expires: float) -> None:
        self.values[key] = value
        self.expires[key] = expires

    def pop(self, key: str) -> None:
        self.values.pop(key, None)
        self.expires.pop(key, None)

    def clear(self) -> None:
        self.values.clear()
        self.expires.clear()


@dataclass
class _Ledger:
    """One quota's counted entries: each one's size and expiry, their total, and a heap of
    expiries (one per write; an entry extended since leaves a stale one behind)."""

    sizes: dict[str, int] = field(default_factory=dict)
    expires: dict[str, float] = field(default_factory=dict)
    expiries: list[tuple[float, str]] = field(default_factory=list)
    total: int = 0

    def put(self, key: str, size: int, expires: float) -> None:
        self.total += size - self.sizes.get(key, 0)
        self.sizes[key] = size
        self.expires[key] = expires
        heapq.heappush(self.expiries, (expires, key))
        if len(self.expiries) > 2 * len(self.sizes) + 64:  # mostly stale: start afresh
            self.expiries = [(when, name) for name, when in self.expires.items()]
            heapq.heapify(self.expiries)

    def pop(self, key: str) -> None:
        self.total -= self.sizes.pop(key, 0)
        self.expires.pop(key, None)

    def expired(self, now: float) -> list[str]:
        """Forget the entries whose time has come, whatever order they were written in."""
        gone = []
        while self.expiries and self.expiries[0][0] <= now:
            expires, key = heapq.heappop(self.expiries)
            if self.expires.get(key) == expires:  # else extended, or gone already
                self.pop(key)
                gone.append(key)
        return gone


class MemoryState:
    """Entries expire lazily. The table of plain entries (caches, cooldowns) is bounded so
    that no key pattern can grow it forever, its oldest entries making room. Counted entries
    (stored responses) live apart, bounded by their quotas alone (each counts `ENTRY_COST`
    besides its bytes): no write ever drops another writer's counted entry, and a write that
    does not fit its quotas is refused instead."""

    name = "memory"

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._values: _Table[str] = _Table()
        self._counted: _Table[str] = _Table()
        self._counters: _Table[int] = _Table()
        self._ledgers: dict[str, _Ledger] = {}  # by quota name
        self._max_entries = max_entries
        self._clock = clock
        self._swept_at = float("-inf")

    async def get(self, key: str) -> str | None:
        table = self._values if key in self._values else self._counted
        return table.get(key, self._clock())

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        self._make_room(self._values)
        self._values.put(key, value, self._clock() + ttl_s)

    async def delete(self, key: str) -> None:
        self._values.pop(key)
        self._counted.pop(key)
        self._counters.pop(key)

    async def hit(self, key: str, window_s: float, amount: int = 1) -> Hit:
        now = self._clock()
        count = self._counters.get(key, now)
        if count is None:
            self._make_room(self._counters)
            count, expires = 0, now + window_s
        else:
            expires = self._counters.expires[key]
        self._counters.put(key, count + amount, expires)
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
        size = len(value.encode()) + ENTRY_COST
        for ledger, quota in zip(ledgers, quotas, strict=True):
            if ledger.total - ledger.sizes.get(key, 0) + size > quota.max_bytes:
                return False
        expires = self._clock() + ttl_s
        for ledger in ledgers:
            ledger.put(key, size, expires)
        self._values.pop(key)
        self._counted.put(key, value, expires)
        return True

    async def extend_counted(self, key: str, ttl_s: float, quotas: Sequence[Quota]) -> bool:
        ledgers = [self._ledger(quota) for quota in quotas]
        value = self._counted.get(key, self._clock())
        if key not in ledgers[0].sizes or value is None:
            return False
        size = ledgers[0].sizes[key]
        for ledger, quota in zip(ledgers[1:], quotas[1:], strict=True):
            if key not in ledger.sizes and ledger.total + size > quota.max_bytes:
                return False
        expires = self._clock() + ttl_s
        for ledger in ledgers:
            ledger.put(key, size, expires)
        self._counted.put(key, value, expires)
        return True

    async def delete_counted(self, key: str, quotas: Sequence[Quota]) -> bool:
        ledgers = [self._ledger(quota) for quota in quotas]
        existed = key in ledgers[0].sizes
        for ledger in ledgers:
            ledger.pop(key)
        self._counted.pop(key)
        return existed

    async def counted_bytes(self, quota: Quota) -> int:
        return self._ledger(quota).total

    def _ledger(self, quota: Quota) -> _Ledger:
        """The quota's ledger, its expired entries dropped (values and bytes alike)."""
        ledger = self._ledgers.setdefault(quota.name, _Ledger())
        now = self._clock()
        for key in ledger.expired(now):
            self._counted.get(key, now)  # dropped if it has expired
        return ledger

    def _make_room(self, table: _Table[T]) -> None:
        if len(table) < self._max_entries:
            return
        # A full table is swept of expired entries at most once a second: a sweep walks all
        # of it, and a table full of live entries would otherwise be walked on every write.
        now = self._clock()
        if now - self._swept_at >= SWEEP_INTERVAL_S:
            self._swept_at = now
            for key in [k for k, expires in table.expires.items() if expires <= now]:
                table.pop(key)
        while len(table) >= self._max_entries:
            table.pop(next(iter(table.values)))

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._values.clear()
        self._counted.clear()
        self._counters.clear()
        self._ledgers.clear()
