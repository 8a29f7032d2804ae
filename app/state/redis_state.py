"""State in Redis, shared by every worker and replica; one round trip per operation."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as redis

from app.state.base import ENTRY_COST, Admission, Count, Hit, Option, Quota

PREFIX = "vg:"

# INCRBY and the window's expiry in one atomic step, so no counter is ever left without one.
_HIT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
if count == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""

# Leases: a count may lend its process up to 1/LEASE_SHARE of what is left of its limit, at
# most MAX_LEASE units, never past the limit; near the limit nothing is lent.
LEASE_SHARE = 256
MAX_LEASE = 128

# A request's checks in one step. KEYS: the first count's key (when ARGV[2] > 0), the n
# options' resting keys, then their count keys (a resting key stands in for an option
# without a count: its amount is 0 and it is never written). ARGV: n, then the first count's
# amount, window (ms), limit and whether to lend, then the same for each option.
# The answer: the first hit (count, ttl, lent), the chosen option (1-based, 0: none) and its
# hit, and which options rest; -1 where there is nothing to say.
_ADMIT = f"""
local function hit(key, amount, window, limit, lend)
  local lent = 0
  if lend == '1' then
    local left = limit - tonumber(redis.call('GET', key) or '0') - amount
    lent = math.max(0, math.min({MAX_LEASE}, math.floor(left / {LEASE_SHARE})))
  end
  local count = redis.call('INCRBY', key, amount + lent)
  if count == amount + lent then redis.call('PEXPIRE', key, window) end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then redis.call('PEXPIRE', key, window); ttl = window end
  return {{count, ttl, lent}}
end
local n, amount = tonumber(ARGV[1]), tonumber(ARGV[2])
local first, k = {{-1, -1, 0}}, 0
if amount > 0 then
  first = hit(KEYS[1], amount, tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5])
  k = 1
  if first[1] > tonumber(ARGV[4]) then return {{first, 0, {{-1, -1, 0}}, ''}} end
end
local resting, chosen = {{}}, 0
for i = 1, n do
  resting[i] = tostring(redis.call('EXISTS', KEYS[k + i]))
  if chosen == 0 and resting[i] == '0' then chosen = i end
end
if chosen == 0 and n > 0 then chosen = 1 end
local counted = {{-1, -1, 0}}
if chosen > 0 then
  local at = 2 + 4 * chosen
  local option_amount = tonumber(ARGV[at])
  if option_amount > 0 then
    local window, limit = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
    counted = hit(KEYS[k + n + chosen], option_amount, window, limit, ARGV[at + 3])
  end
end
return {{first, chosen, counted, table.concat(resting)}}
"""

# Counted entries: per quota a sorted set of keys by expiry (ms), a hash of their sizes and
# their total. KEYS[1] is the entry, then three keys per quota; an entry counts against each.
# Each script first forgets what has expired in every quota (a bounded batch per call), so a
# total is what live entries hold; the server's clock serves every replica alike.
_FORGET_EXPIRED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local quotas = (#KEYS - 1) / 3
local totals = {}
for q = 1, quotas do
  local expiry, sizes = KEYS[3 * q - 1], KEYS[3 * q]
  local total = tonumber(redis.call('GET', KEYS[3 * q + 1]) or '0')
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, 1000)) do
    total = total - tonumber(redis.call('HGET', sizes, key) or '0')
    redis.call('HDEL', sizes, key)
    redis.call('ZREM', expiry, key)
  end
  totals[q] = total
end
local function count(q, size, ttl)
  local old = tonumber(redis.call('HGET', KEYS[3 * q], KEYS[1]) or '0')
  redis.call('ZADD', KEYS[3 * q - 1], now + ttl, KEYS[1])
  redis.call('HSET', KEYS[3 * q], KEYS[1], size)
  totals[q] = totals[q] - old + size
end
local function keep_totals()
  for q = 1, quotas do redis.call('SET', KEYS[3 * q + 1], totals[q]) end
end
"""
# ARGV: the value, its time to live (ms), then each quota's bytes.
_SET_COUNTED = (
    _FORGET_EXPIRED
    + f"""
local size = string.len(ARGV[1]) + {ENTRY_COST}
for q = 1, quotas do
  local old = tonumber(redis.call('HGET', KEYS[3 * q], KEYS[1]) or '0')
  if totals[q] - old + size > tonumber(ARGV[2 + q]) then
    keep_totals()
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for q = 1, quotas do count(q, size, tonumber(ARGV[2])) end
keep_totals()
return 1
"""
)
# ARGV: the new time to live (ms), then each quota's bytes.
_EXTEND_COUNTED = (
    _FORGET_EXPIRED
    + """
keep_totals()
local size = tonumber(redis.call('HGET', KEYS[3], KEYS[1]) or '-1')
if size < 0 or redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for q = 2, quotas do
  local counted = redis.call('HEXISTS', KEYS[3 * q], KEYS[1]) == 1
  if not counted and totals[q] + size > tonumber(ARGV[1 + q]) then return 0 end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
for q = 1, quotas do count(q, size, tonumber(ARGV[1])) end
keep_totals()
return 1
"""
)
_DELETE_COUNTED = (
    _FORGET_EXPIRED
    + """
local counted = redis.call('HEXISTS', KEYS[3], KEYS[1])
for q = 1, quotas do
  totals[q] = totals[q] - tonumber(redis.call('HGET', KEYS[3 * q], KEYS[1]) or '0')
  redis.call('HDEL', KEYS[3 * q], KEYS[1])
  redis.call('ZREM', KEYS[3 * q - 1], KEYS[1])
end
keep_totals()
redis.call('DEL', KEYS[1])
return counted
"""
)


def _ledger_keys(quotas: Sequence[Quota], key: str) -> list[str]:
    keys = [PREFIX + key]
    for quota in quotas:
        base = f"{PREFIX}quota:{quota.name}:"
        keys += [base + "expiry", base + "bytes", base + "total"]
    return keys


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
        self._admit = self._redis.register_script(_ADMIT)
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

    async def admit(self, count: Count | None, options: Sequence[Option]) -> Admission:
        keys = [PREFIX + count.key] if count is not None else []
        args: list[int] = [len(options), *_count_args(count)]
        keys += [PREFIX + option.resting_key for option in options]
        for option in options:
            keys.append(PREFIX + (option.count.key if option.count else option.resting_key))
            args += _count_args(option.count)
        first, chosen, counted, resting = await self._admit(keys=keys, args=args)
        return Admission(
            _hit(first),
            tuple(flag == "1" for flag in str(resting)),
            int(chosen) - 1 if int(chosen) > 0 else None,
            _hit(counted),
        )

    async def set_counted(
        self, key: str, value: str, ttl_s: float, quotas: Sequence[Quota]
    ) -> bool:
        args: list[str | int] = [value, _ms(ttl_s), *(quota.max_bytes for quota in quotas)]
        return bool(await self._set_counted(keys=_ledger_keys(quotas, key), args=args))

    async def extend_counted(self, key: str, ttl_s: float, quotas: Sequence[Quota]) -> bool:
        args = [_ms(ttl_s), *(quota.max_bytes for quota in quotas)]
        return bool(await self._extend_counted(keys=_ledger_keys(quotas, key), args=args))

    async def delete_counted(self, key: str, quotas: Sequence[Quota]) -> bool:
        return bool(await self._delete_counted(keys=_ledger_keys(quotas, key)))

    async def counted_bytes(self, quota: Quota) -> int:
        # The total as the last write left it: entries expired since are forgotten at the next.
        total = await self._redis.get(_ledger_keys([quota], "")[3])
        return int(total or 0)

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def aclose(self) -> None:
        await self._redis.aclose()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _count_args(count: Count | None) -> list[int]:
    if count is None:
        return [0, 0, 0, 0]
    return [count.amount, _ms(count.window_s), count.limit, int(count.lend)]


def _hit(found: list[int]) -> Hit | None:
    count, ttl_ms, lent = (int(value) for value in found)
    return None if count < 0 else Hit(count, ttl_ms / 1000, lent)
