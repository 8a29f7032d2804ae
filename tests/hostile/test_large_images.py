"""Large images in data URIs go upstream from the request body itself: one copy of each image
per request in flight, where parsing and re-encoding them made three."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.hostile.fakes import HostileUpstream, data_uri, png
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
CLIENTS, ROUNDS = 8, 3
# 8 bodies of ~4.6 MB at once, kept for reuse afterwards, and what reading them takes;
# three copies of each come to about 90 MB.
RSS_GROWTH_MB = 64


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    base = {"base_url": hostile_upstream.base_url("predictionguard").removesuffix("/v1")}
    models = [{"name": "vision", "provider": "openai", "retries": 0, **base}]
    return gateways.start(gateway_config(models))


def test_concurrent_large_data_uris_cost_one_copy_each(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream
) -> None:
    part = {"type": "image_url", "image_url": {"url": data_uri(png(1100, 1000, noise=True))}}
    message = {"role": "user", "content": [{"type": "text", "text": "What is this?"}, part]}
    body = json.dumps({"model": "vision", "messages": [message]}).encode()
    assert len(body) > 4_000_000
    hostile_upstream.reset()

    def ask(_: int) -> int:
        headers = {"content-type": "application/json"}
        url = f"{gateway.url}/v1/chat/completions"
        return httpx.post(url, content=body, headers=headers, timeout=60).status_code

    with Watch(gateway, rss_growth_mb=RSS_GROWTH_MB), ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(ask, range(CLIENTS * ROUNDS)))

    assert statuses == [200] * CLIENTS * ROUNDS
    assert hostile_upstream.calls == CLIENTS * ROUNDS
