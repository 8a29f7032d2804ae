"""Fixtures for the hostile-input suite: `python -m app` processes on loopback, attacked over
real sockets, and hostile upstreams; `tests.hostile.watch.Watch` checks memory and `/health`
meanwhile."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.servers import serving
from tests.hostile.fakes import HostileUpstream
from tests.ops.redis_server import RedisServer, running_redis
from tests.processes import Gateways


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateways]:
    """Launches gateway processes shared by one module's cases; stopped when it ends."""
    launcher = Gateways(tmp_path_factory.mktemp("hostile"))
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture(scope="module")
def hostile_upstream() -> Iterator[HostileUpstream]:
    """The hostile upstreams and image host, served on loopback for a test module."""
    with serving(HostileUpstream()) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A `redis-server` of the module's own."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server
