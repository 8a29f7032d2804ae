"""The state backend seam: a small store with expiry and atomic counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Hit:
    """One request counted against a limit: the count so far in its window, and when the
    window ends."""

    count: int
    resets_in_s: float


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

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...
