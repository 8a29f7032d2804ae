"""State in Redis, shared by every worker and replica; one round trip per operation."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.state.base import Hit, Quota, StateBackend

logger = logging.getLogger(__name__)

PREFIX = "vg:"
RETRY_PRIMARY_AFTER_S = 5.0

# INCRBY and the window's expiry in one atomic step, so no counter is ever left without one.
_HIT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
if count == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""

# Counted entries: per quota a sorted set of keys by expiry (ms), a hash of their sizes and
# their total. Each script first forgets what has expired (a bounded batch per call), so the
# total is what live entries hold; the server's clock serves every replica alike.
_FORGET_EXPIRED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)) do
  total = total - tonumber(redis.call('HGET', KEYS[2], key) or '0')
  redis.call('HDEL', KEYS[2], key)
  redis.call('ZREM', KEYS[1], key)
end
"""
_SET_COUNTED = (
    _FORGET_EXPIRED
    + """
local size = string.len(ARGV[1])
local old = tonumber(redis.call('HGET', KEYS[2], KEYS[4]) or '0')
local fits = total - old + size <= tonumber(ARGV[3])
if fits then
  redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[2])
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), KEYS[4])
  redis.call('HSET', KEYS[2], KEYS[4], size)
  total = total - old + size
end
redis.call('SET', KEYS[3], total)
if fits then return 1 end
return 0
"""
)
_EXTEND_COUNTED = (
    _FORGET_EXPIRED
    + """
redis.call('SET', KEYS[3], total)
if redis.call('HEXISTS', KEYS[2], KEYS[4]) == 0 then return 0 end
if redis.call('PEXPIRE', KEYS[4], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), KEYS[4])
return 1
"""
)
_DELETE_COUNTED = (
    _FORGET_EXPIRED
    + """
total = total - tonumber(redis.call('HGET', KEYS[2], KEYS[4]) or '0')
redis.call('HDEL', KEYS[2], KEYS[4])
redis.call('ZREM', KEYS[1], KEYS[4])
redis.call('SET', KEYS[3], total)
return redis.call('DEL', KEYS[4])
"""
)


def _ledger_keys(quota: Quota, key: str) -> list[str]:
    base = f"{PREFIX}quota:{quota.name}:"
    return [base + "expiry", base + "bytes", base + "total", PREFIX + key]


class RedisState:
    name = "redis"

    def __init__(self, url: str, *, timeout_s: float = 0.5) -> None:
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            decode_responses=True,
            health_check_interval=30,
        )
        self._hit = self._redis.register_script(_HIT)
        self._set_counted = self._redis.register_script(_SET_COUNTED)
        self._extend_counted = self._redis.register_script(_EXTEND_COUNTED)
        self._delete_counted = self._redis.register_script(_DELETE_COUNTED)

    async def get(self, key: str) -> str | None:
        value = await self._redis.get(PREFIX + key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        await self._redis.set(PREFIX + key, value, px=max(1, int(ttl_s * 1000)))

    async def delete(self, key: str) -> None:
        await self._redis.delete(PREFIX + key)

    async def hit(self, key: str, window_s: float, amount: int = 1) -> Hit:
        window_ms = max(1, int(window_s * 1000))
        count, ttl_ms = await self._hit(keys=[PREFIX + key], args=[window_ms, amount])
        return Hit(int(count), int(ttl_ms) / 1000)

    async def set_counted(self, key: str, value: str, ttl_s: float, quota: Quota) -> bool:
        args: list[str | int] = [value, _ms(ttl_s), quota.max_bytes]
        return bool(await self._set_counted(keys=_ledger_keys(quota, key), args=args))

    async def extend_counted(self, key: str, ttl_s: float, quota: Quota) -> bool:
        return bool(await self._extend_counted(keys=_ledger_keys(quota, key), args=[_ms(ttl_s)]))

    async def delete_counted(self, key: str, quota: Quota) -> bool:
        return bool(await self._delete_counted(keys=_ledger_keys(quota, key)))

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def aclose(self) -> None:
        await self._redis.aclose()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class ResilientState:
    """Redis first; while it is unreachable, this process's memory, so that serving goes on.

    Limits then hold per process instead of across all of them, and `/ready` reports the
    degraded state. Redis is tried again every few seconds.
    """

    name = "redis"

    def __init__(
        self,
        primary: RedisState,
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

    async def set_counted(self, key: str, value: str, ttl_s: float, quota: Quota) -> bool:
        try:
            return await self._backend().set_counted(key, value, ttl_s, quota)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.set_counted(key, value, ttl_s, quota)

    async def extend_counted(self, key: str, ttl_s: float, quota: Quota) -> bool:
        try:
            return await self._backend().extend_counted(key, ttl_s, quota)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.extend_counted(key, ttl_s, quota)

    async def delete_counted(self, key: str, quota: Quota) -> bool:
        try:
            return await self._backend().delete_counted(key, quota)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.delete_counted(key, quota)

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
