"""Redis first, and this process's memory while Redis is unreachable."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from redis.exceptions import RedisError

from app.state.base import Admission, Count, Hit, Option, Quota, StateBackend

logger = logging.getLogger(__name__)

RETRY_PRIMARY_AFTER_S = 5.0


class ResilientState:
    """Redis first; while it is unreachable, this process's memory, so that serving goes on.

    Limits then hold per process instead of across all of them, and `/ready` reports the
    degraded state. Redis is tried again every few seconds.
    """

    name = "redis"

    def __init__(
        self,
        primary: StateBackend,
        fallback: StateBackend,
        *,
        on_error: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._on_error = on_error
        self._clock = clock
        self._down_until = 0.0

    @property
    def degraded(self) -> bool:
        return self._clock() < self._down_until

    def _backend(self) -> StateBackend:
        return self._fallback if self.degraded else self._primary

    def _failed(self, exc: Exception) -> None:
        if not self.degraded:
            logger.warning(
                "redis is unreachable (%s); using process memory for %g s",
                type(exc).__name__,
                RETRY_PRIMARY_AFTER_S,
            )
        self._down_until = self._clock() + RETRY_PRIMARY_AFTER_S
        self._on_error()

    async def get(self, key: str) -> str | None:
        try:
            return await self._backend().get(key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.get(key)

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        try:
            await self._backend().set(key, value, ttl_s)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            await self._fallback.set(key, value, ttl_s)

    async def delete(self, key: str) -> None:
        try:
            await self._backend().delete(key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            await self._fallback.delete(key)

    async def hit(self, key: str, window_s: float, amount: int = 1) -> Hit:
        try:
            return await self._backend().hit(key, window_s, amount)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.hit(key, window_s, amount)

    async def admit(self, count: Count | None, options: Sequence[Option]) -> Admission:
        try:
            return await self._backend().admit(count, options)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.admit(count, options)

    async def set_counted(
        self, key: str, value: str, ttl_s: float, quotas: Sequence[Quota]
    ) -> bool:
        try:
            return await self._backend().set_counted(key, value, ttl_s, quotas)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.set_counted(key, value, ttl_s, quotas)

    async def extend_counted(self, key: str, ttl_s: float, quotas: Sequence[Quota]) -> bool:
        try:
            return await self._backend().extend_counted(key, ttl_s, quotas)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.extend_counted(key, ttl_s, quotas)

    async def delete_counted(self, key: str, quotas: Sequence[Quota]) -> bool:
        try:
            return await self._backend().delete_counted(key, quotas)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.delete_counted(key, quotas)

    async def counted_bytes(self, quota: Quota) -> int:
        try:
            return await self._backend().counted_bytes(quota)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.counted_bytes(quota)

    async def ping(self) -> bool:
        try:
            alive = await self._primary.ping()
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return False
        if alive:
            self._down_until = 0.0
        return alive

    async def aclose(self) -> None:
        await self._primary.aclose()
        await self._fallback.aclose()
