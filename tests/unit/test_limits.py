"""A key's rate against the request's other refusals: which one the client hears."""

from __future__ import annotations

import pytest

from app.errors import InvalidRequest, RateLimited
from app.service.limits import Limit, RateLimiter
from app.state import MemoryState

pytestmark = pytest.mark.anyio


async def refuse(limiter: RateLimiter, key: Limit | None, error: Exception) -> None:
    async with limiter.key_first(key):
        raise error


async def test_a_refusal_is_the_keys_429_once_the_key_is_past_its_rate() -> None:
    limiter, key = RateLimiter(MemoryState()), Limit("key:a", 1, "this key")

    with pytest.raises(InvalidRequest):
        await refuse(limiter, key, InvalidRequest("bad", param="tools"))
    with pytest.raises(RateLimited, match="this key is limited to 1 requests per minute"):
        await refuse(limiter, key, InvalidRequest("bad", param="tools"))


async def test_only_refusals_count_against_the_key() -> None:
    limiter, key = RateLimiter(MemoryState()), Limit("key:a", 1, "this key")

    for _ in range(3):
        with pytest.raises(ValueError, match="not a refusal"):
            await refuse(limiter, key, ValueError("not a refusal"))
        async with limiter.key_first(key):
            pass

    await limiter.check(key)  # the first request this key is counted for
    with pytest.raises(RateLimited):
        await limiter.check(key)


async def test_without_a_key_rate_a_refusal_stays_itself() -> None:
    limiter = RateLimiter(MemoryState())

    for _ in range(3):
        with pytest.raises(InvalidRequest):
            await refuse(limiter, None, InvalidRequest("bad"))
