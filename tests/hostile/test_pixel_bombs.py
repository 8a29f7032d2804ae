"""Pixels, not bytes, against the server `python -m app` starts: images of a few KB that
decode to hundreds of MB are admitted by what they decode to, or refused when that alone is
over `images.max_decode_bytes`; one key's queue of conversions never keeps another key's
image waiting; a GIF cut into millions of blocks costs a bounded walk."""

from __future__ import annotations

import asyncio
import io
import time

import httpx
import pytest
from PIL import Image

from tests.hostile.bombs import deep_png, flat_png, fragmented_gif, lossless_webp
from tests.hostile.fakes import HostileUpstream, data_uri
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
ATTACKER = {"key": "sk-hostile-pixels-attacker-51aa", "name": "attacker"}
VICTIM = {"key": "sk-hostile-pixels-victim-0c7e", "name": "victim"}
BUDGET_MB = 256  # images.max_decode_bytes, the default


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    """Prediction Guard takes JPEG and PNG only: every other format is converted for it."""
    models: list[dict[str, object]] = [
        {
            "name": "pg",
            "provider": "predictionguard",
            "base_url": hostile_upstream.base_url("predictionguard"),
            "api_key": "pg-upstream-key",
            "retries": 0,
            "timeout_s": 60,
        },
        {"name": "inspect", "provider": "inspect"},
    ]
    return gateways.start(gateway_config(models, server={"api_keys": [ATTACKER, VICTIM]}))


def _body(model: str, uris: list[str], *, low: bool = False) -> dict[str, object]:
    detail = {"detail": "low"} if low else {}
    parts = [{"type": "image_url", "image_url": {"url": uri, **detail}} for uri in uris]
    return {"model": model, "messages": [{"role": "user", "content": parts}]}


def _client(gateway: GatewayProcess, key: dict[str, str]) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key['key']}"}
    return httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=120)


async def _attack_then_ask(
    gateway: GatewayProcess, attack: dict[str, object], requests: int
) -> tuple[list[int], int, float]:
    """The attacker's requests under way, the victim's ordinary image asked about meanwhile:
    the attacker's statuses, the victim's, and how long the victim waited."""
    small = io.BytesIO()
    Image.new("RGB", (300, 200), (9, 9, 200)).save(small, "BMP")
    ordinary = _body("pg", [data_uri(small.getvalue(), "image/bmp")])
    async with _client(gateway, ATTACKER) as attacker, _client(gateway, VICTIM) as victim:
        tasks = [
            asyncio.create_task(attacker.post("/v1/chat/completions", json=attack))
            for _ in range(requests)
        ]
        await asyncio.sleep(1.0)  # the attacker's conversions are under way and queued
        began = time.monotonic()
        answer = await victim.post("/v1/chat/completions", json=ordinary)
        took = time.monotonic() - began
        statuses = [reply.status_code for reply in await asyncio.gather(*tasks)]
    return statuses, answer.status_code, took


def test_images_that_decode_past_the_budget_are_refused_before_decoding(
    gateway: GatewayProcess,
) -> None:
    """Three requests of 16 WEBPs of 7071² (2 KB each, about 800 MB each to decode)."""
    attack = _body("pg", [data_uri(lossless_webp(7071), "image/webp")] * 16)
    with Watch(gateway, rss_growth_mb=60, max_cpu_s=2):
        statuses, victim, took = asyncio.run(_attack_then_ask(gateway, attack, 3))
        print(f"webp bombs {statuses}, victim {victim} after {took:.2f} s")  # noqa: T201
        assert statuses == [400] * 3
        assert victim == 200
        assert took < 2.0


def test_one_keys_queue_of_conversions_never_keeps_another_key_waiting(
    gateway: GatewayProcess,
) -> None:
    """Three requests of 16 distinct 25-megapixel PNGs to downsize (100 MB each decoded,
    about 0.3 s of CPU each): the victim's one image takes the next turn, not the last."""
    uris = [data_uri(flat_png(5000 + n)) for n in range(16)]
    attack = _body("pg", uris, low=True)
    with Watch(gateway, rss_growth_mb=BUDGET_MB // 2 + 60, max_cpu_s=40):
        statuses, victim, took = asyncio.run(_attack_then_ask(gateway, attack, 3))
        print(f"png queue {statuses}, victim {victim} after {took:.2f} s")  # noqa: T201
        assert statuses == [200] * 3
        assert victim == 200
        assert took < 2.0


def test_a_deep_png_decodes_within_the_budget(gateway: GatewayProcess) -> None:
    """A 16-bit greyscale PNG of 7071² (113 KB): 520 MB through 32-bit copies, 250 MB now."""
    body = _body("pg", [data_uri(deep_png(7071))], low=True)
    headers = {"Authorization": f"Bearer {VICTIM['key']}"}
    with Watch(gateway, rss_growth_mb=BUDGET_MB + 40, max_cpu_s=5):
        reply = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers)
        print(f"deep png: {reply.status_code}")  # noqa: T201
        assert reply.status_code == 200, reply.text[:300]


def test_a_gif_cut_into_millions_of_blocks_costs_a_bounded_walk(gateway: GatewayProcess) -> None:
    """18 MB of 1-byte sub-blocks, checked whole before it goes on as it is."""
    body = _body("inspect", [data_uri(fragmented_gif(18 * 1024 * 1024), "image/gif")])
    headers = {"Authorization": f"Bearer {VICTIM['key']}"}
    with Watch(gateway, rss_growth_mb=80, max_cpu_s=1.5):
        reply = httpx.post(
            f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=60
        )
        print(f"fragmented gif: {reply.status_code} {reply.text[:160]}")  # noqa: T201
        assert reply.status_code == 400, reply.text[:300]
        assert "blocks" in reply.json()["error"]["message"]
