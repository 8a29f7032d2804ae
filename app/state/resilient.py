"""Redis first, and this process's memory while Redis is unreachable."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from app.state.base import Admission, Count, Hit, Option, Quota, StateBackend

logger = logging.getLogger(__name__)

RETRY_PRIMARY_AFTER_S = 5.0
T = TypeVar("T")
Operation = Callable[[StateBackend], Awaitable[T]]


class ResilientState:
    """Redis first; while it is unreachable, this process's memory, so that serving goes on.

    Limits then hold per process instead of across all of them, and `/ready` reports the
    degraded state. Redis is tried again every few seconds.

    One call that times out while Redis still answers a ping (a large value on its way, a
    moment of load) is tried once more before anything falls back: a slow call is not an
    outage, and falling back for one would forget every limit and stored response for
    seconds. Only a second failure, or a Redis that answers nothing, does.
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
        self._fell_back = False  # since `ping` last said how things stand

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
        self._fell_back = True
        self._on_error()

    async def _call(self, operation: Operation[T]) -> T:
        backend = self._backend()
        try:
            return await operation(backend)
        except (RedisError, OSError) as exc:
            failure: Exception = exc
        if backend is self._primary and isinstance(failure, RedisTimeout) and await self._answers():
            logger.info("a redis call was slow (%s); trying it once more", type(failure).__name__)
            try:
                return await operation(self._primary)
            except (RedisError, OSError) as exc:
                failure = exc
        self._failed(failure)
        return await operation(self._fallback)

    async def _answers(self) -> bool:
        try:
            return await self._primary.ping()
        except (RedisError, OSError):
            return False

    async def get(self, key: str) -> str | None:
        return await self._call(lambda backend: backend.get(key))

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        await self._call(lambda backend: backend.set(key, value, ttl_s))

    async def delete(self, key: str) -> None:
        await self._call(lambda backend: backend.delete(key))

    async def hit(self, key: str, window_s: float, amount: int = 1) -> Hit:
        return await self._call(lambda backend: backend.hit(key, window_s, amount))

    async def admit(self, count: Count | None, options: Sequence[Option]) -> Admission:
        return await self._call(lambda backend: backend.admit(count, options))

    async def set_counted(
        self, key: str, value: str, ttl_s: float, quotas: Sequence[Quota]
    ) -> bool:
        return await self._call(lambda backend: backend.set_counted(key, value, ttl_s, quotas))

    async def extend_counted(self, key: str, ttl_s: float, quotas: Sequence[Quota]) -> bool:
        return await self._call(lambda backend: backend.extend_counted(key, ttl_s, quotas))

    async def delete_counted(self, key: str, quotas: Sequence[Quota]) -> bool:
        return await self._call(lambda backend: backend.delete_counted(key, quotas))

    async def counted_bytes(self, quota: Quota) -> int:
        try:
            return await self._backend().counted_bytes(quota)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.counted_bytes(quota)

    async def ping(self) -> bool:
        """Whether Redis answers and nothing fell back to memory since the last ping: a
        process that served from memory a moment ago is not ready, even if Redis answers
        now (it is tried again meanwhile)."""
        fell_back, self._fell_back = self._fell_back, False
        try:
            alive = await self._primary.ping()
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return False
        if alive:
            self._down_until = 0.0
        return alive and not fell_back

    async def aclose(self) -> None:
        await self._primary.aclose()
        await self._fallback.aclose()
