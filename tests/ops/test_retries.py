"""Retries, failover and cooldowns (groups) against a fake that fails on command, with
the gateway in process so that the cooldown can be shortened."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.service import limits
from tests.conftest import make_config
from tests.e2e.deployments import entry
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.e2e.servers import serve_in_thread
from tests.ops.redis_server import RedisServer
from tests.ops.traffic import chat_body, metric_value

pytestmark = pytest.mark.e2e

COOLDOWN_S = 2.0


@contextmanager
def serve(models: list[dict[str, Any]], **sections: Any) -> Iterator[httpx.Client]:
    """A gateway for `models` in this process, and a client for it."""
    app = create_app(make_config(models, **sections))
    with (
        serve_in_thread(app, ready_path="/health") as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        yield http


def received(upstream: FakeUpstream, model: str) -> int:
    return sum(request.model == model for request in upstream.received)


def test_a_failed_call_is_retried_once_on_the_same_deployment(upstream: FakeUpstream) -> None:
    upstream.script("up-flaky", Reply(status=500), Reply())

    with serve([entry("flaky", upstream, upstream_model="up-flaky", retries=1)]) as http:
        response = http.post("/v1/chat/completions", json=chat_body("flaky"))
        exposition = http.get("/metrics").text

    assert response.status_code == 200, response.text
    assert received(upstream, "up-flaky") == 2
    assert metric_value(exposition, "gateway_upstream_retries_total", provider="openai") == 1
    assert metric_value(exposition, "gateway_failovers_total") == 0


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_failing_deployment_fails_over_cools_down_and_comes_back(
    upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    backend: str,
) -> None:
    monkeypatch.setattr(limits, "COOLDOWN_S", COOLDOWN_S)
    state: dict[str, str] = {"backend": backend}
    if backend == "redis":
        redis: RedisServer = request.getfixturevalue("redis")
        state["url"] = redis.url
    upstream.script("up-broken", Reply(status=500))
    group = [
        entry("pair", upstream, upstream_model="up-broken"),
        entry("pair", upstream, upstream_model="up-healthy"),
    ]

    with serve(group, state=state) as http:

        def ask() -> None:
            response = http.post("/v1/chat/completions", json=chat_body("pair"))
            assert response.status_code == 200, response.text

        while received(upstream, "up-broken") < limits.FAILURES_BEFORE_COOLDOWN:
            ask()
        cooled_at = time.monotonic()
        for _ in range(6):
            ask()
        failures_while_cooling = received(upstream, "up-broken")
        failovers = metric_value(http.get("/metrics").text, "gateway_failovers_total")

        time.sleep(max(0.0, cooled_at + COOLDOWN_S + 0.2 - time.monotonic()))
        for _ in range(2):  # requests take turns starting with each entry of the group
            ask()

    assert failures_while_cooling == limits.FAILURES_BEFORE_COOLDOWN
    assert failovers == limits.FAILURES_BEFORE_COOLDOWN
    assert received(upstream, "up-broken") == limits.FAILURES_BEFORE_COOLDOWN + 1
