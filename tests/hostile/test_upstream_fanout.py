"""`n` where the gateway fans out: capped per model, and counted as n requests by `rpm`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.hostile.fakes import HostileUpstream, data_uri, png
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
OPEN_KEY = "hostile-open-key-7d1c"
COUNTED_KEY = "hostile-counted-key-19ab"


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    """Prediction Guard (no native `n`) with the default fan-out cap, once without and once
    with an `rpm`; one key without and one with an `rpm`."""
    base = {
        "provider": "predictionguard",
        "base_url": hostile_upstream.base_url("predictionguard"),
        "api_key": "pg-upstream-key",
        "retries": 0,
    }
    models = [{"name": "pg", **base}, {"name": "pg-limited", **base, "rpm": 10}]
    keys = [{"key": OPEN_KEY, "name": "open"}, {"key": COUNTED_KEY, "name": "counted", "rpm": 10}]
    return gateways.start(gateway_config(models, server={"api_keys": keys}))


def ask(
    gateway: GatewayProcess, model: str, n: int, key: str = OPEN_KEY, **more: Any
) -> httpx.Response:
    body = {"model": model, "n": n, "messages": [{"role": "user", "content": "hi"}], **more}
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


def test_n_past_the_fanout_cap_is_refused_before_any_call(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream
) -> None:
    hostile_upstream.reset()
    image = {"type": "image_url", "image_url": {"url": data_uri(png(1024, 1024, noise=True))}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what?"}, image]}]
    with Watch(gateway):
        reply = ask(gateway, "pg", 128, messages=messages)
    assert reply.status_code == 400, reply.text[:200]
    assert reply.json()["error"]["param"] == "n"
    assert hostile_upstream.calls == 0


def test_n_within_the_cap_is_served_by_parallel_calls(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream
) -> None:
    hostile_upstream.reset()
    reply = ask(gateway, "pg", 8)
    assert reply.status_code == 200, reply.text[:200]
    assert [choice["index"] for choice in reply.json()["choices"]] == list(range(8))
    assert hostile_upstream.calls == 8


@pytest.mark.parametrize(("model", "key"), [("pg", COUNTED_KEY), ("pg-limited", OPEN_KEY)])
def test_n_counts_as_n_requests_against_rpm(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream, model: str, key: str
) -> None:
    """The key's and the model's `rpm` of 10: two requests with `n: 6` are 12 requests."""
    hostile_upstream.reset()
    with Watch(gateway):
        first, second = ask(gateway, model, 6, key), ask(gateway, model, 6, key)
    assert first.status_code == 200, first.text[:200]
    assert second.status_code == 429, second.text[:200]
    assert second.headers["retry-after"]
    assert hostile_upstream.calls == 6
