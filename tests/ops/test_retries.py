"""Retries, failover and cooldowns (groups) against a fake that fails on command, through
`python -m app` processes; the cooldown is a short one, waited out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from app.service import limits
from tests.e2e.deployments import entry
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.ops.configs import gateway_config
from tests.ops.redis_server import RedisServer
from tests.ops.traffic import chat_body, metric_value
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e

BACKENDS = ("memory", "redis")
COOLDOWN_S = 2.0


@contextmanager
def client_of(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        yield http


def received(upstream: FakeUpstream, model: str) -> int:
    return sum(request.model == model for request in upstream.received)


def ask(http: httpx.Client, model: str) -> None:
    response = http.post("/v1/chat/completions", json=chat_body(model))
    assert response.status_code == 200, response.text


def test_a_failed_call_is_retried_once_on_the_same_deployment(
    upstream: FakeUpstream, gateways: Gateways
) -> None:
    upstream.script("up-flaky", Reply(status=500), Reply())
    models = [entry("flaky", upstream, upstream_model="up-flaky", retries=1)]

    with client_of(gateways.start(gateway_config(models))) as http:
        response = http.post("/v1/chat/completions", json=chat_body("flaky"))
        exposition = http.get("/metrics").text

    assert response.status_code == 200, response.text
    assert received(upstream, "up-flaky") == 2
    assert metric_value(exposition, "gateway_upstream_retries_total", provider="openai") == 1
    assert metric_value(exposition, "gateway_failovers_total") == 0


def test_a_failing_deployment_fails_over_cools_down_and_comes_back(
    upstream: FakeUpstream, redis: RedisServer, gateways: Gateways
) -> None:
    """With the state in process memory and in Redis, side by side, so that the cooldown is
    waited out once for both."""
    launched: dict[str, GatewayProcess] = {}
    for backend in BACKENDS:
        upstream.script(f"up-broken-{backend}", Reply(status=500))
        group = [
            entry("pair", upstream, upstream_model=f"up-broken-{backend}", cooldown_s=COOLDOWN_S),
            entry("pair", upstream, upstream_model=f"up-healthy-{backend}", cooldown_s=COOLDOWN_S),
        ]
        redis_url = redis.url if backend == "redis" else None
        launched[backend] = gateways.launch(gateway_config(group, redis_url=redis_url))
    for gateway in launched.values():
        gateway.wait_ready()
    cooled_at: dict[str, float] = {}
    failures_while_cooling: dict[str, int] = {}
    failovers: dict[str, float] = {}

    for backend, gateway in launched.items():
        with client_of(gateway) as http:
            while received(upstream, f"up-broken-{backend}") < limits.FAILURES_BEFORE_COOLDOWN:
                ask(http, "pair")
            cooled_at[backend] = time.monotonic()
            for _ in range(6):
                ask(http, "pair")
            failures_while_cooling[backend] = received(upstream, f"up-broken-{backend}")
            failovers[backend] = metric_value(http.get("/metrics").text, "gateway_failovers_total")
    time.sleep(max(0.0, max(cooled_at.values()) + COOLDOWN_S + 0.2 - time.monotonic()))
    for gateway in launched.values():
        with client_of(gateway) as http:
            for _ in range(2):  # requests take turns starting with each entry of the group
                ask(http, "pair")

    for backend in BACKENDS:
        assert failures_while_cooling[backend] == limits.FAILURES_BEFORE_COOLDOWN, backend
        assert failovers[backend] == limits.FAILURES_BEFORE_COOLDOWN, backend
        broken = received(upstream, f"up-broken-{backend}")
        assert broken == limits.FAILURES_BEFORE_COOLDOWN + 1, backend


def test_a_deployment_without_a_cooldown_is_tried_after_every_failure(
    upstream: FakeUpstream, gateways: Gateways
) -> None:
    upstream.script("up-always-broken", Reply(status=500))
    group = [
        entry("never-rested", upstream, upstream_model="up-always-broken", cooldown_s=0),
        entry("never-rested", upstream, upstream_model="up-fine"),
    ]

    with client_of(gateways.start(gateway_config(group))) as http:
        for _ in range(2 * (limits.FAILURES_BEFORE_COOLDOWN + 2)):
            ask(http, "never-rested")

    # Requests take turns starting with each entry: every other one met the broken entry.
    assert received(upstream, "up-always-broken") == limits.FAILURES_BEFORE_COOLDOWN + 2
