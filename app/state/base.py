"""The state backend seam: a small store with expiry and atomic counters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Hit:
    """One request counted against a limit: the count so far in its window, and when the
    window ends. `leased` units were counted on top of the request's own and lent to this
    process, which may spend them on its own until the window ends."""

    count: int
    resets_in_s: float
    leased: int = 0


@dataclass(frozen=True)
class Count:
    """`amount` events to count under `key` in a window of `window_s`, allowed up to `limit`.
    With `lend`, a backend shared by several processes may count a few units more, within
    the limit, and lend them to this process (`Hit.leased`)."""

    key: str
    window_s: float
    limit: int
    amount: int = 1
    lend: bool = False


@dataclass(frozen=True)
class Option:
    """One of the places a request may go: it rests while `resting_key` exists, and `count`
    (if any) is counted when it is the one chosen."""

    resting_key: str
    count: Count | None = None


@dataclass(frozen=True)
class Admission:
    """What `admit` found: `first` is the hit of its `count`; when that is within its limit,
    `resting` says which options rest, `chosen` is the index of the option counted (the first
    one not resting, else the first of all) and `chosen_hit` is its hit."""

    first: Hit | None
    resting: tuple[bool, ...] = ()
    chosen: int | None = None
    chosen_hit: Hit | None = None


# What keeping one counted entry costs besides its value's bytes (its key, the tables' and
# the ledgers' slots), counted against its quotas in every backend: many tiny entries fill a
# quota as surely as a few large ones.
ENTRY_COST = 512


@dataclass(frozen=True)
class Quota:
    """A byte budget shared by a family of entries (stored responses and their images): what
    their live entries hold together, `ENTRY_COST` each besides their bytes, may not pass
    `max_bytes`."""

    name: str
    max_bytes: int


class StateBackend(Protocol):
    """A small key-value store with expiry and atomic counters. `memory` serves one process;
    `redis` serves every worker and replica."""

    name: str

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_s: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def hit(self, key: str, window_s: float, amount: int = 1) -> Hit:
        """Count `amount` events in the window that starts with the key's first event."""
        ...

    async def admit(self, count: Count | None, options: Sequence[Option]) -> Admission:
        """A request's checks in one atomic step: `count` is counted; unless that passes its
        limit, the options' resting keys are read, and the chosen option's count counted."""
        ...

    async def set_counted(
        self, key: str, value: str, ttl_s: float, quotas: Sequence[Quota]
    ) -> bool:
        """Store `value` for `ttl_s`, counted against each of `quotas`; nothing is stored, and
        the answer is False, when any quota's live entries and this one would pass its
        bytes."""
        ...

    async def extend_counted(self, key: str, ttl_s: float, quotas: Sequence[Quota]) -> bool:
        """Let an entry counted against the first of `quotas` live `ttl_s` from now, and count
        it against the others it is not counted against yet. False, and nothing changed,
        when there is no such entry or it does not fit one of them."""
        ...

    async def delete_counted(self, key: str, quotas: Sequence[Quota]) -> bool:
        """Forget a counted entry and free its bytes in each of `quotas`; False when the first
        did not count it."""
        ...

    async def counted_bytes(self, quota: Quota) -> int:
        """What the live entries counted against `quota` hold together."""
        ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...
