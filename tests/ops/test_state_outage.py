"""Redis going away mid-run: requests are still served from process
memory, readiness reports `degraded`, and both recover once Redis is back."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.deployments import entry
from tests.e2e.fakes.openai_compat import FakeUpstream
from tests.ops.configs import gateway_config
from tests.ops.redis_server import RedisServer
from tests.ops.traffic import chat_body, metric_value, scrape
from tests.processes import Gateways

pytestmark = pytest.mark.e2e

RECOVERY_S = 10.0
# A hung Redis costs a request at most the state backend's socket timeout (0.5 s), once.
HUNG_REDIS_LATENCY_S = 1.5


def test_redis_server_answers(redis: RedisServer) -> None:
    assert redis.running
    assert redis.url.startswith("redis://127.0.0.1:")


def test_serving_goes_on_while_redis_is_down_and_readiness_recovers(
    redis: RedisServer, upstream: FakeUpstream, gateways: Gateways
) -> None:
    models = [entry("vision", upstream, upstream_model="up-vision", rpm=1000)]
    gateway = gateways.start(gateway_config(models, redis_url=redis.url))

    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        ready = http.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        assert http.post("/v1/chat/completions", json=chat_body("vision")).status_code == 200

        redis.stop()
        during = [http.post("/v1/chat/completions", json=chat_body("vision")) for _ in range(5)]
        degraded = http.get("/ready")
        errors = metric_value(scrape(gateway.url), "gateway_state_backend_errors_total")

        redis.start()  # empty: nothing of before the outage is left in it
        deadline = time.monotonic() + RECOVERY_S
        while (recovered := http.get("/ready")).status_code != 200:
            assert time.monotonic() < deadline, f"/ready still says {recovered.text}"
            time.sleep(0.2)
        after = http.post("/v1/chat/completions", json=chat_body("vision"))

    assert [response.status_code for response in during] == [200] * 5
    assert degraded.status_code == 503
    assert degraded.json()["status"] == "degraded"
    assert errors > 0
    assert recovered.json()["status"] == "ready"
    assert after.status_code == 200
    # The count went to Redis again, not to the fallback.
    assert "vg:rpm:vision#0" in redis.stored_keys()


def test_a_hung_redis_delays_requests_only_briefly(
    redis: RedisServer, upstream: FakeUpstream, gateways: Gateways
) -> None:
    models = [entry("vision", upstream, upstream_model="up-vision", rpm=1000)]
    gateway = gateways.start(gateway_config(models, redis_url=redis.url))

    with httpx.Client(base_url=gateway.url, timeout=30) as http, redis.paused():
        timed = [timed_call(lambda: http.post("/v1/chat/completions", json=chat_body("vision")))]
        timed += [timed_call(lambda: http.get("/ready")) for _ in range(2)]
        timed += [timed_call(lambda: http.post("/v1/chat/completions", json=chat_body("vision")))]

    assert [response.status_code for response, _ in timed] == [200, 503, 503, 200]
    assert max(seconds for _, seconds in timed) < HUNG_REDIS_LATENCY_S, timed


def timed_call(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started
