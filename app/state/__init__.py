"""Shared state: what workers and replicas must agree on (upload cache, limits, cooldowns)."""

from __future__ import annotations

from collections.abc import Callable

from app.config import StateConfig
from app.state.base import Admission, Count, Hit, Option, Quota, StateBackend
from app.state.memory import MemoryState

__all__ = [
    "Admission",
    "Count",
    "Hit",
    "MemoryState",
    "Option",
    "Quota",
    "StateBackend",
    "build_state",
]


def build_state(config: StateConfig, on_error: Callable[[], None]) -> StateBackend:
    """The configured backend; Redis lends each process small budgets of its limits, and
    falls back to process memory while it is unreachable."""
    if config.backend == "redis":
        # Imported only when used: the Redis client costs every worker about 6 MB.
        from app.state.leases import LeasingState
        from app.state.redis_state import RedisState
        from app.state.resilient import ResilientState

        shared = LeasingState(RedisState(config.url))
        return ResilientState(shared, MemoryState(), on_error=on_error)
    return MemoryState()
