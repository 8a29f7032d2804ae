"""Slow image URLs from one client hold its own share of the fetch pool, never the others'."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.hostile.fakes import HostileUpstream, png
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
ATTACKER_KEY = "hostile-attacker-key-5e2b"
VICTIM_KEY = "hostile-victim-key-c81f"
# 8 requests of 16 slow URLs: more fetches than the pool's 100 connections.
ATTACK_REQUESTS = 8
IMAGES_PER_REQUEST = 16


def _config(upstream: HostileUpstream, **server: object) -> dict[str, object]:
    models = [
        {
            "name": "pg",
            "provider": "predictionguard",
            "base_url": upstream.base_url("predictionguard"),
            "api_key": "pg-upstream-key",
            "retries": 0,
            "timeout_s": 60,
        }
    ]
    images = {"allow_private_networks": True, "fetch_timeout_s": 4}
    return gateway_config(models, images=images, server=server)


@pytest.fixture(scope="module", params=["by key", "by address"])
def gateway(
    request: pytest.FixtureRequest, gateways: Gateways, hostile_upstream: HostileUpstream
) -> Iterator[GatewayProcess]:
    """Clients told apart by their key, or, without keys, by their address."""
    keys = [{"key": ATTACKER_KEY, "name": "attacker"}, {"key": VICTIM_KEY, "name": "victim"}]
    server = {"api_keys": keys} if request.param == "by key" else {}
    gateway = gateways.start(_config(hostile_upstream, **server))
    yield gateway
    gateway.stop()


def _client(gateway: GatewayProcess, key: str, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=gateway.url,
        headers={"Authorization": f"Bearer {key}"},
        transport=httpx.AsyncHTTPTransport(local_address=address),
        timeout=30,
    )


def _body(urls: list[str]) -> dict[str, object]:
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    content = [{"type": "text", "text": "what are these?"}, *parts]
    return {"model": "pg", "messages": [{"role": "user", "content": content}]}


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)


async def _attack_then_ask(
    gateway: GatewayProcess, upstream: HostileUpstream
) -> tuple[httpx.Response, float, int]:
    """The attacker's slow fetches under way, the victim's request, how long it took, and the
    most slow fetches under way at once until then (when the attack is called off, the image
    host still counts fetches the gateway has dropped)."""
    async with (
        _client(gateway, ATTACKER_KEY, "127.0.0.2") as attacker,
        _client(gateway, VICTIM_KEY, "127.0.0.3") as victim,
    ):
        attack = [
            asyncio.create_task(
                attacker.post(
                    "/v1/chat/completions",
                    json=_body(
                        [
                            f"{upstream.url}/images/slow/{r}-{i}.png"
                            for i in range(IMAGES_PER_REQUEST)
                        ]
                    ),
                )
            )
            for r in range(ATTACK_REQUESTS)
        ]
        await _until(lambda: upstream.slow_requests >= 8)
        await asyncio.sleep(0.3)  # every fetch the gateway lets the attacker start has started
        began = time.monotonic()
        answer = await victim.post(
            "/v1/chat/completions", json=_body([upstream.put_image("ok.png", png())])
        )
        took, slow_peak = time.monotonic() - began, upstream.slow_peak
        for task in attack:
            task.cancel()
        await asyncio.gather(*attack, return_exceptions=True)
    return answer, took, slow_peak


def test_one_client_with_slow_image_urls_does_not_starve_another(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream
) -> None:
    hostile_upstream.reset()
    with Watch(gateway):
        answer, took, slow_peak = asyncio.run(_attack_then_ask(gateway, hostile_upstream))
    assert answer.status_code == 200, answer.text[:300]
    assert took < 2.0
    assert slow_peak == 8  # the attacker's share of the pool


async def _one_request(gateway: GatewayProcess, upstream: HostileUpstream) -> int:
    """The most slow fetches one request had under way at once."""
    async with _client(gateway, ATTACKER_KEY, "127.0.0.2") as client:
        urls = [f"{upstream.url}/images/slow/alone-{i}.png" for i in range(IMAGES_PER_REQUEST)]
        task = asyncio.create_task(client.post("/v1/chat/completions", json=_body(urls)))
        await _until(lambda: upstream.slow_requests >= 4)
        await asyncio.sleep(0.5)
        slow_peak = upstream.slow_peak
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return slow_peak


def test_one_request_fetches_a_few_images_at_a_time(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream
) -> None:
    hostile_upstream.reset()
    assert asyncio.run(_one_request(gateway, hostile_upstream)) == 4
