"""Bytes fetched from image URLs, against the server `python -m app` starts: one request may
fetch and hold `images.max_fetched_bytes_per_request`, the requests in flight of a worker
`images.max_fetched_bytes`, and inlining a fetched image for an upstream that reads bytes
makes one base64 copy of it, not three."""

from __future__ import annotations

import asyncio
import functools

import httpx
import pytest

from tests.hostile.fakes import HostileUpstream, png
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
MB = 1024 * 1024
REQUEST_BUDGET_MB = 64  # images.max_fetched_bytes_per_request, the default
WORKER_BUDGET_MB = 256  # images.max_fetched_bytes, the default
# These cases move hundreds of MB through the gateway in 20 MB buffers, each mapped fresh and
# given back, while worker threads copy and encode them. Alone they answer /health within
# 60 ms. Late in the whole suite the same work costs the gateway twice the CPU, most of it in
# the kernel touching fresh memory, and a probe now and then waits 140-200 ms while the event
# loop itself is idle (py-spy: no Python frame of it busy for over 41 ms): waiting on the
# kernel's memory map, which the threads' faults and unmaps hold. The other cases keep 100 ms.
HEALTH_WITHIN_S = 0.4


@functools.cache
def large_png() -> bytes:
    """An incompressible PNG of about 20 MB, just under `images.max_image_bytes`."""
    data = png(2600, 2600, noise=True)
    assert 19 * MB < len(data) < 20 * MB
    return data


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    """Prediction Guard takes images inline only: the gateway fetches each URL for it."""
    models: list[dict[str, object]] = [
        {
            "name": "pg",
            "provider": "predictionguard",
            "base_url": hostile_upstream.base_url("predictionguard"),
            "api_key": "pg-upstream-key",
            "retries": 0,
            "timeout_s": 120,
        },
        {
            "name": "pg-slow",
            "provider": "predictionguard",
            "base_url": hostile_upstream.base_url("predictionguard-slow"),
            "api_key": "pg-upstream-key",
            "retries": 0,
            "timeout_s": 120,
        },
    ]
    images = {"allow_private_networks": True, "fetch_timeout_s": 60}
    return gateways.start(gateway_config(models, images=images))


def _body(model: str, urls: list[str]) -> dict[str, object]:
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return {"model": model, "messages": [{"role": "user", "content": parts}]}


def _urls(upstream: HostileUpstream, count: int, tag: str) -> list[str]:
    url = upstream.put_image("large.png", large_png())
    return [f"{url}?{tag}-{n}" for n in range(count)]  # as many fetches as URLs


async def _ask_at_once(gateway: GatewayProcess, bodies: list[dict[str, object]]) -> list[int]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=180) as client:
        replies = await asyncio.gather(
            *[client.post("/v1/chat/completions", json=body) for body in bodies]
        )
    return [reply.status_code for reply in replies]


@pytest.mark.parametrize("requests", [1, 2])
def test_one_request_fetches_no_more_than_its_budget(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream, requests: int
) -> None:
    """16 URLs of a 20 MB PNG in a request of 1.7 KB, for an upstream that takes them inline."""
    hostile_upstream.reset()
    bodies = [_body("pg", _urls(hostile_upstream, 16, f"r{r}")) for r in range(requests)]
    with Watch(
        gateway,
        rss_growth_mb=requests * (REQUEST_BUDGET_MB + 60),
        max_cpu_s=5,
        health_within_s=HEALTH_WITHIN_S,
    ):
        statuses = asyncio.run(_ask_at_once(gateway, bodies))
        print(f"{requests} request(s) of 16 × 20 MB: {statuses}")  # noqa: T201
        assert statuses == [400] * requests
        assert hostile_upstream.calls == 0


def test_the_requests_of_a_worker_fetch_no_more_than_its_budget(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream
) -> None:
    """Eight requests of three 20 MB images each (within a request's budget), at once, to an
    upstream that takes two seconds to answer: they hold their images meanwhile."""
    hostile_upstream.reset()
    bodies = [_body("pg-slow", _urls(hostile_upstream, 3, f"w{r}")) for r in range(8)]
    # What the budget lets the requests hold, with the base64 each inlines beside it.
    held_mb = WORKER_BUDGET_MB * 7 // 3
    with Watch(gateway, rss_growth_mb=held_mb + 80, max_cpu_s=8, health_within_s=HEALTH_WITHIN_S):
        statuses = asyncio.run(_ask_at_once(gateway, bodies))
        print(f"8 requests of 3 × 20 MB: {sorted(statuses)}")  # noqa: T201
        assert set(statuses) == {200, 503}


def test_a_fetched_image_is_inlined_with_one_copy_of_its_base64(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream
) -> None:
    """Three 20 MB images for an upstream that takes them inline: the 60 MB fetched and the
    80 MB of base64 the upstream gets, no more (a string of it and a whole encoded body on
    top made 300 MB)."""
    hostile_upstream.reset()
    body = _body("pg", _urls(hostile_upstream, 3, "one"))
    with Watch(gateway, rss_growth_mb=180, max_cpu_s=5, health_within_s=HEALTH_WITHIN_S):
        [status] = asyncio.run(_ask_at_once(gateway, [body]))
        got = hostile_upstream.received_bytes // MB
        print(f"3 × 20 MB inlined: {status}, upstream got {got} MB")  # noqa: T201
        assert status == 200
        assert hostile_upstream.received_bytes > 3 * 25 * MB  # the three, in base64
