"""Fixtures for the ops tests: a session Redis and a fake upstream on loopback (gateway
processes come from `tests/conftest.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.fakes.openai_compat import FakeUpstream
from tests.e2e.servers import ServedFakes
from tests.ops.redis_server import RedisServer, running_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A `redis-server` for the session."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis(redis_server: RedisServer) -> RedisServer:
    """The session's Redis, running (an earlier test may have stopped it) and empty."""
    redis_server.start()
    redis_server.flush()
    return redis_server


@pytest.fixture(scope="session")
def upstream_server(served_fakes: ServedFakes) -> FakeUpstream:
    """The OpenAI-compatible fake on loopback, for fixtures that outlive one test."""
    return served_fakes.get(FakeUpstream, "openai")


@pytest.fixture
def upstream(served_fakes: ServedFakes) -> FakeUpstream:
    """The OpenAI-compatible fake on loopback, with no script and no recorded requests."""
    return served_fakes.fresh(FakeUpstream, "openai")
