"""Small budgets lent by the shared state to this process, so that a limit far from its end
and a recent look at the cooldowns cost a request no round trip at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from app.state.base import Admission, Count, Hit, Option, Quota, StateBackend

# How long a look at which deployments rest serves this process: a cooldown another process
# starts is seen here that much later at most (this process's own are seen at once).
RESTING_FRESH_S = 1.0


@dataclass
class Lease:
    """Units of one count lent to this process, until its window ends (a monotonic time)."""

    units: int
    ends: float
    count: int  # the shared count when they were lent, which they are part of


class LeasingState:
    """A shared backend, asked only when a lease is spent or the resting keys are stale.

    The shared count includes every unit lent, so no limit is ever passed; a process that
    stops receiving requests keeps what it was lent until the window ends. Entries are one
    per configured key and deployment, so the tables stay small.
    """

    name = "redis"

    def __init__(self, shared: StateBackend, *, clock: Callable[[], float] = time.monotonic):
        self._shared = shared
        self._clock = clock
        self._leases: dict[str, Lease] = {}
        self._resting: dict[str, tuple[bool, float]] = {}  # resting key: (rests, seen at)
        self._asking: asyncio.Future[None] | None = None  # leases being renewed

    async def admit(self, count: Count | None, options: Sequence[Option]) -> Admission:
        local = self._admit_locally(count, options)
        if local is not None:
            return local
        if self._asking is not None:
            # Another request is renewing the leases: wait for it rather than hoard more,
            # and share its failure, so that the fallback takes over at once.
            await asyncio.shield(self._asking)
            return self._admit_locally(count, options) or await self._ask(count, options)
        self._asking = asyncio.get_running_loop().create_future()
        try:
            admission = await self._ask(count, options, lend=True)
        except Exception as exc:  # a cancelled request's waiters ask for themselves
            self._asking.set_exception(exc)
            self._asking.exception()  # retrieved: nobody may be waiting
            raise
        finally:
            if not self._asking.done():
                self._asking.set_result(None)
            self._asking = None
        return admission

    async def _ask(
        self, count: Count | None, options: Sequence[Option], *, lend: bool = False
    ) -> Admission:
        """The shared backend's answer; with `lend`, leases for the counts not covered here."""
        now = self._clock()
        if lend:
            count = self._lending(count, now)
            options = [Option(o.resting_key, self._lending(o.count, now)) for o in options]
        admission = await self._shared.admit(count, options)
        self._remember(count, options, admission)
        return admission

    def _lending(self, count: Count | None, now: float) -> Count | None:
        if count is None or self._covers(count, now):
            return count
        return replace(count, lend=True)

    def _admit_locally(self, count: Count | None, options: Sequence[Option]) -> Admission | None:
        now = self._clock()
        resting = []
        for option in options:
            seen = self._resting.get(option.resting_key)
            if seen is None or now - seen[1] > RESTING_FRESH_S:
                return None
            resting.append(seen[0])
        if not resting:
            return None
        chosen = resting.index(False) if False in resting else 0
        counts = [c for c in (count, options[chosen].count) if c is not None]
        if not all(self._covers(c, now) for c in counts):
            return None
        first = self._spend(count, now) if count is not None else None
        counted = options[chosen].count
        return Admission(
            first, tuple(resting), chosen, self._spend(counted, now) if counted else None
        )

    def _covers(self, count: Count, now: float) -> bool:
        lease = self._leases.get(count.key)
        return lease is not None and lease.units >= count.amount and lease.ends > now

    def _spend(self, count: Count, now: float) -> Hit:
        lease = self._leases[count.key]
        lease.units -= count.amount
        return Hit(lease.count, lease.ends - now)

    def _remember(
        self, count: Count | None, options: Sequence[Option], admission: Admission
    ) -> None:
        now = self._clock()
        self._lend(count, admission.first, now)
        if admission.chosen is None:
            return
        for option, rests in zip(options, admission.resting, strict=True):
            self._resting[option.resting_key] = (rests, now)
        self._lend(options[admission.chosen].count, admission.chosen_hit, now)

    def _lend(self, count: Count | None, hit: Hit | None, now: float) -> None:
        if count is None or hit is None or hit.leased <= 0:
            return
        lease = self._leases.get(count.key)
        kept = lease.units if lease is not None and lease.ends > now else 0
        self._leases[count.key] = Lease(kept + hit.leased, now + hit.resets_in_s, hit.count)

    def _saw(self, key: str, rests: bool) -> None:
        if key in self._resting:
            self._resting[key] = (rests, self._clock())

    async def get(self, key: str) -> str | None:
        return await self._shared.get(key)

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        await self._shared.set(key, value, ttl_s)
        self._saw(key, True)

    async def delete(self, key: str) -> None:
        await self._shared.delete(key)
        self._saw(key, False)

    async def hit(self, key: str, window_s: float, amount: int = 1) -> Hit:
        return await self._shared.hit(key, window_s, amount)

    async def set_counted(
        self, key: str, value: str, ttl_s: float, quotas: Sequence[Quota]
    ) -> bool:
        return await self._shared.set_counted(key, value, ttl_s, quotas)

    async def extend_counted(self, key: str, ttl_s: float, quotas: Sequence[Quota]) -> bool:
        return await self._shared.extend_counted(key, ttl_s, quotas)

    async def counted_bytes(self, quota: Quota) -> int:
        return await self._shared.counted_bytes(quota)

    async def delete_counted(self, key: str, quotas: Sequence[Quota]) -> bool:
        return await self._shared.delete_counted(key, quotas)

    async def ping(self) -> bool:
        return await self._shared.ping()

    async def aclose(self) -> None:
        await self._shared.aclose()
