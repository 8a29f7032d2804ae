"""Redis first, memory while it is out: a slow call is tried again rather than an outage, and
readiness says when anything was served from memory."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout

from app.state import MemoryState
from app.state.resilient import ResilientState

pytestmark = pytest.mark.anyio


class Flaky(MemoryState):
    """A primary whose next `get` calls fail with the errors given, and which answers pings
    unless told not to."""

    def __init__(self, *failures: Exception, answers: bool = True) -> None:
        super().__init__()
        self.failures = list(failures)
        self.answers = answers
        self.gets = 0

    async def get(self, key: str) -> str | None:
        self.gets += 1
        if self.failures:
            raise self.failures.pop(0)
        return await super().get(key)

    async def ping(self) -> bool:
        if not self.answers:
            raise RedisConnectionError("no answer")
        return True


async def test_one_slow_call_while_redis_answers_is_tried_again_not_an_outage() -> None:
    primary, errors = Flaky(RedisTimeout("slow")), []
    await primary.set("k", "on redis", 60)
    state = ResilientState(primary, MemoryState(), on_error=lambda: errors.append(1))

    assert await state.get("k") == "on redis"
    assert (primary.gets, errors, state.degraded) == (2, [], False)
    assert await state.ping()


@pytest.mark.parametrize(
    ("failures", "answers"),
    [
        ((RedisTimeout("slow"), RedisTimeout("slow again")), True),
        ((RedisTimeout("slow"),), False),  # and no answer to a ping either
        ((RedisConnectionError("refused"),), True),  # not slow: out
    ],
)
async def test_redis_out_falls_back_and_ready_says_so_once_after(
    failures: tuple[Exception, ...], answers: bool
) -> None:
    primary, fallback = Flaky(*failures, answers=answers), MemoryState()
    await fallback.set("k", "in memory", 60)
    state = ResilientState(primary, fallback)

    assert await state.get("k") == "in memory"
    assert state.degraded
    primary.answers = True
    assert not await state.ping()  # answers now, but served from memory since the last look
    assert await state.ping()
