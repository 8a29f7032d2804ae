"""A request's checks in one step of the state backend, in memory and in a real Redis: the
first count, which options rest, and the chosen option's count."""

from __future__ import annotations

import pytest

from app.state import Count, MemoryState, Option, StateBackend
from app.state.redis_state import RedisState
from app.state.resilient import ResilientState
from tests.processes import free_port
from tests.unit.backends import Backend

pytestmark = pytest.mark.anyio

WINDOW_S = 60.0


def key_count(limit: int, amount: int = 1) -> Count:
    return Count("rpm:key", WINDOW_S, limit, amount)


def options(count: int, amount: int = 1) -> list[Option]:
    return [
        Option(f"cooldown:d{i}", Count(f"rpm:d{i}", WINDOW_S, 100, amount)) for i in range(count)
    ]


async def counted(state: StateBackend, key: str) -> int:
    """What a counter holds, without adding to it."""
    return (await state.hit(key, WINDOW_S, 0)).count


async def test_the_first_count_and_the_first_option_are_counted_together(
    backend: Backend,
) -> None:
    state = backend.state
    admission = await state.admit(key_count(10, amount=3), options(3, amount=3))

    assert admission.first is not None
    assert admission.first.count == 3
    assert 0 < admission.first.resets_in_s <= WINDOW_S
    assert admission.resting == (False, False, False)
    assert admission.chosen == 0
    assert admission.chosen_hit is not None
    assert admission.chosen_hit.count == 3
    assert [await counted(state, f"rpm:d{i}") for i in range(3)] == [3, 0, 0]


async def test_past_the_first_limit_nothing_else_is_counted(backend: Backend) -> None:
    state = backend.state
    await state.admit(key_count(1), options(2))

    refused = await state.admit(key_count(1), options(2))

    assert refused.first is not None
    assert refused.first.count == 2
    assert (refused.resting, refused.chosen, refused.chosen_hit) == ((), None, None)
    assert await counted(state, "rpm:d0") == 1


async def test_the_first_option_not_resting_is_the_one_counted(backend: Backend) -> None:
    state = backend.state
    await state.set("cooldown:d0", "1", 30)

    admission = await state.admit(None, options(3))

    assert admission.first is None
    assert admission.resting == (True, False, False)
    assert admission.chosen == 1
    assert admission.chosen_hit is not None
    assert admission.chosen_hit.count == 1
    assert [await counted(state, f"rpm:d{i}") for i in range(3)] == [0, 1, 0]


async def test_when_every_option_rests_the_first_is_counted(backend: Backend) -> None:
    state = backend.state
    for i in range(2):
        await state.set(f"cooldown:d{i}", "1", 30)

    admission = await state.admit(key_count(5), options(2))

    assert admission.resting == (True, True)
    assert admission.chosen == 0
    assert await counted(state, "rpm:d0") == 1


async def test_an_option_without_a_count_is_chosen_without_counting(backend: Backend) -> None:
    admission = await backend.state.admit(key_count(5), [Option("cooldown:free")])

    assert (admission.resting, admission.chosen, admission.chosen_hit) == ((False,), 0, None)


async def test_a_cooldown_that_expired_rests_no_more(backend: Backend) -> None:
    await backend.state.set("cooldown:d0", "1", 0.2)
    await backend.advance(0.3)

    admission = await backend.state.admit(None, options(1))

    assert admission.resting == (False,)


async def test_while_redis_is_unreachable_process_memory_admits() -> None:
    errors: list[None] = []
    unreachable = RedisState(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    state = ResilientState(unreachable, MemoryState(), on_error=lambda: errors.append(None))
    try:
        first = await state.admit(key_count(1), options(1))
        second = await state.admit(key_count(1), options(1))
    finally:
        await state.aclose()

    assert state.degraded
    assert len(errors) == 1  # the second went straight to memory
    assert first.chosen == 0
    assert second.first is not None
    assert second.first.count == 2


async def test_the_count_may_reach_its_limit_but_not_pass_it(backend: Backend) -> None:
    results = [await backend.state.admit(key_count(2), options(1)) for _ in range(3)]

    assert [result.chosen for result in results] == [0, 0, None]
