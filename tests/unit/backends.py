"""State backends for unit tests: in memory with a clock of their own, or in a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from app.state import MemoryState, StateBackend
from tests.ops.redis_server import RedisServer, running_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A `redis-server` for the session."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    """A state backend and a way to let time pass for it."""

    state: StateBackend
    clock: FakeClock | None

    async def advance(self, seconds: float) -> None:
        if self.clock is not None:
            self.clock.now += seconds
        else:  # Redis expires keys on its own clock
            await asyncio.sleep(seconds)


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        clock = FakeClock()
        yield Backend(MemoryState(clock=clock), clock)
        return
    from app.state.redis_state import RedisState

    server: RedisServer = request.getfixturevalue("redis_server")
    server.flush()
    state = RedisState(server.url)
    try:
        yield Backend(state, None)
    finally:
        await state.aclose()
