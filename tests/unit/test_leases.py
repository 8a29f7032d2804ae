"""Budgets lent by a real Redis to each process: requests far from the limit cost no round
trip, the limit is never passed however the units are spread, and cooldowns stay visible."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import pytest

from app.state import Count, Option
from app.state.leases import RESTING_FRESH_S, LeasingState
from app.state.redis_state import LEASE_SHARE, MAX_LEASE, RedisState
from tests.ops.redis_server import RedisServer
from tests.unit.backends import FakeClock

pytestmark = pytest.mark.anyio

WINDOW_S = 60.0
Process = Callable[[], LeasingState]


@pytest.fixture
async def processes(redis_server: RedisServer) -> AsyncIterator[Process]:
    """Builds gateway processes' states over one empty Redis."""
    redis_server.start()
    redis_server.flush()
    opened: list[LeasingState] = []

    def process() -> LeasingState:
        opened.append(LeasingState(RedisState(redis_server.url)))
        return opened[-1]

    yield process
    for state in opened:
        await state.aclose()


def request(limit: int, *, deployment_limit: bool = True) -> tuple[Count, list[Option]]:
    """A key's count and one deployment, limited to `limit` (the deployment, if at all)."""
    counted = Count("rpm:d0", WINDOW_S, limit) if deployment_limit else None
    return Count("rpm:key", WINDOW_S, limit), [Option("cooldown:d0", counted)]


async def admitted(state: LeasingState, limit: int, *, deployment_limit: bool = True) -> bool:
    """Whether the key's count let the request through."""
    count, options = request(limit, deployment_limit=deployment_limit)
    admission = await state.admit(count, options)
    assert admission.first is not None
    return admission.first.count <= limit


async def shared_count(redis_server: RedisServer, key: str) -> int:
    state = RedisState(redis_server.url)
    try:
        return (await state.hit(key, WINDOW_S, 0)).count
    finally:
        await state.aclose()


async def test_a_lease_serves_the_next_requests_without_redis(
    processes: Process, redis_server: RedisServer
) -> None:
    state, limit = processes(), 10_000
    lent = (limit - 1) // LEASE_SHARE

    assert await admitted(state, limit)
    redis_server.reset_stats()
    assert all([await admitted(state, limit) for _ in range(lent)])

    assert redis_server.calls() == {}
    assert await admitted(state, limit)
    assert redis_server.calls()["evalsha"] == 1
    lent_again = (limit - (1 + lent) - 1) // LEASE_SHARE
    assert await shared_count(redis_server, "rpm:key") == (1 + lent) + (1 + lent_again)


async def test_nothing_is_lent_near_the_limit(
    processes: Process, redis_server: RedisServer
) -> None:
    state = processes()

    results = [await admitted(state, LEASE_SHARE) for _ in range(LEASE_SHARE + 1)]

    assert results == [True] * LEASE_SHARE + [False]
    assert await shared_count(redis_server, "rpm:d0") == LEASE_SHARE


@pytest.mark.parametrize("seed", [1, 2])
async def test_four_processes_never_pass_the_limit_and_hold_back_little(
    processes: Process, seed: int
) -> None:
    """Requests spread at random over 4 processes, past the key's limit: at most the limit
    is admitted, and at most 4 leases' worth less (1.6 % of it)."""
    limit, states = 2048, [processes() for _ in range(4)]
    pick = random.Random(seed)

    results = [
        await admitted(pick.choice(states), limit, deployment_limit=False)
        for _ in range(limit + 200)
    ]

    assert limit - 4 * (limit // LEASE_SHARE) <= sum(results) <= limit


async def test_requests_waiting_for_a_renewal_share_it(
    processes: Process, redis_server: RedisServer
) -> None:
    state, limit = processes(), 1_000_000
    redis_server.reset_stats()

    results = await asyncio.gather(*[admitted(state, limit) for _ in range(MAX_LEASE // 2)])

    assert all(results)
    assert redis_server.calls()["evalsha"] == 1


async def test_cooldowns_are_seen_here_at_once_and_from_elsewhere_within_a_second(
    processes: Process, redis_server: RedisServer
) -> None:
    clock = FakeClock()
    here = LeasingState(RedisState(redis_server.url), clock=clock)
    elsewhere = processes()
    count, options = request(1_000_000)
    try:
        assert (await here.admit(count, options)).resting == (False,)
        await elsewhere.set("cooldown:d0", "1", 30)
        clock.now += RESTING_FRESH_S / 2
        stale = await here.admit(count, options)
        clock.now += RESTING_FRESH_S
        fresh = await here.admit(count, options)
        await here.delete("cooldown:d0")
        own = await here.admit(count, options)
    finally:
        await here.aclose()

    assert (stale.resting, fresh.resting, own.resting) == ((False,), (True,), (False,))
