"""The response cache in Redis, through `python -m app --workers 2`: identical requests spread
over both workers make one upstream job, and with Redis gone the cache is skipped, never an
error, until it is back."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.deployments import png_bytes
from tests.e2e.providers.deployments import MPX_KEY, mpx_entry
from tests.e2e.providers.fakes import FakeMasterpieceX, MPXJob
from tests.e2e.servers import ServedFakes
from tests.ops.configs import gateway_config
from tests.ops.redis_server import RedisServer
from tests.processes import Gateways

pytestmark = pytest.mark.e2e

ANSWER = "A green square."
IMAGE = "data:image/png;base64," + base64.b64encode(png_bytes(32, 32, "green")).decode()
RECOVERY_S = 10.0


@pytest.fixture
def mpx(served_fakes: ServedFakes) -> FakeMasterpieceX:
    return served_fakes.fresh(FakeMasterpieceX, MPX_KEY)


def ask(url: str) -> httpx.Response:
    content = [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": IMAGE}},
    ]
    body: dict[str, Any] = {"model": "jobs", "messages": [{"role": "user", "content": content}]}
    # A new connection each time, so that both workers take requests.
    with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        return client.post(f"{url}/v1/chat/completions", json=body)


def test_identical_requests_on_two_workers_make_one_upstream_job(
    redis: RedisServer, mpx: FakeMasterpieceX, gateways: Gateways
) -> None:
    mpx.script(MPXJob(duration_s=1.5, output=ANSWER))
    models = [mpx_entry(mpx, "jobs", cache={"ttl_s": 60})]
    gateway = gateways.start(gateway_config(models, redis_url=redis.url), workers=2)

    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(lambda _: ask(gateway.url), range(20)))

    assert [r.status_code for r in replies] == [200] * 20
    assert {r.json()["choices"][0]["message"]["content"] for r in replies} == {ANSWER}
    assert sorted(r.headers["x-gateway-cache"] for r in replies) == ["hit"] * 19 + ["miss"]
    assert len(mpx.requests("POST", "/v2/llm/image_query")) == 1


def test_with_redis_gone_the_cache_is_skipped_until_it_is_back(
    redis: RedisServer, mpx: FakeMasterpieceX, gateways: Gateways
) -> None:
    mpx.script(MPXJob(output=ANSWER))
    models = [mpx_entry(mpx, "jobs", cache={"ttl_s": 60})]
    gateway = gateways.start(gateway_config(models, redis_url=redis.url))

    first, kept = ask(gateway.url), ask(gateway.url)
    redis.stop()
    during = [ask(gateway.url) for _ in range(3)]
    redis.start()  # empty: what was kept is gone with it
    deadline = time.monotonic() + RECOVERY_S
    while httpx.get(f"{gateway.url}/ready", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "readiness did not recover"
        time.sleep(0.2)
    after = [ask(gateway.url) for _ in range(2)]

    assert [r.headers["x-gateway-cache"] for r in (first, kept)] == ["miss", "hit"]
    assert [r.status_code for r in during] == [200] * 3
    assert [r.headers["x-gateway-cache"] for r in during] == ["miss"] * 3
    assert [r.headers["x-gateway-cache"] for r in after] == ["miss", "hit"]
    skipped = [
        line for line in gateway.log_records() if "response cache is skipped" in line["message"]
    ]
    assert len(skipped) == 1  # said once, not for every request
