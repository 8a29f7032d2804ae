"""Rate limits and cooldowns, kept in the state backend so that every worker agrees."""

from __future__ import annotations

import logging
import math

from app.config import ModelEntry
from app.errors import InvalidRequest, RateLimited
from app.state import StateBackend

logger = logging.getLogger(__name__)

WINDOW_S = 60.0
# A deployment failing this many times within FAILURE_WINDOW_S is skipped for COOLDOWN_S.
FAILURES_BEFORE_COOLDOWN = 3
FAILURE_WINDOW_S = 60.0
COOLDOWN_S = 30.0


class RateLimiter:
    """Requests per minute for a name (a gateway key, a deployment), across all workers."""

    def __init__(self, state: StateBackend) -> None:
        self._state = state

    async def check(self, name: str, rpm: int, what: str, cost: int = 1) -> None:
        """Count `cost` requests (a request's `n`: each choice is an answer to make); 429
        with `Retry-After` once `rpm` is used up in this window."""
        if rpm <= 0:
            return
        hit = await self._state.hit(f"rpm:{name}", WINDOW_S, cost)
        if hit.count > rpm:
            retry_after = max(1, math.ceil(hit.resets_in_s))
            counted = f" (n={cost} counts as {cost})" if cost > 1 else ""
            raise RateLimited(
                f"{what} is limited to {rpm} requests per minute{counted}; "
                f"retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )


def check_fanout(n: int, entry: ModelEntry, *, native_n: bool) -> None:
    """400 for an `n` past the model's `max_fanout_n` where the gateway would make one
    upstream call per choice, before any image is prepared or any call made."""
    if native_n or n <= entry.max_fanout_n:
        return
    raise InvalidRequest(
        f"this model answers at most n={entry.max_fanout_n} choices per request", param="n"
    )


class Cooldowns:
    """Deployments that keep failing are rested for a while, then come back on their own."""

    def __init__(self, state: StateBackend) -> None:
        self._state = state
        self._recent_failures: set[str] = set()

    async def cooling(self, deployment: str) -> bool:
        return await self._state.get(f"cooldown:{deployment}") is not None

    async def failed(self, deployment: str) -> bool:
        """Record a failure; True when it put the deployment into cooldown."""
        self._recent_failures.add(deployment)
        hit = await self._state.hit(f"failures:{deployment}", FAILURE_WINDOW_S)
        if hit.count < FAILURES_BEFORE_COOLDOWN:
            return False
        await self._state.set(f"cooldown:{deployment}", "1", COOLDOWN_S)
        await self._state.delete(f"failures:{deployment}")
        logger.warning(
            "deployment %s failed %d times: cooling down for %g s",
            deployment,
            hit.count,
            COOLDOWN_S,
        )
        return True

    async def succeeded(self, deployment: str) -> None:
        """A success clears the failure count (only when this process saw failures, so that
        the common case costs no round trip)."""
        if deployment in self._recent_failures:
            self._recent_failures.discard(deployment)
            await self._state.delete(f"failures:{deployment}")
