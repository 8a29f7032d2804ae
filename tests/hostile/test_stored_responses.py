"""Stored responses under attack, against the server `python -m app` starts: one key's flood of
stored responses never evicts another key's (a response over its share is refused, logged and
counted), another key's large response is refused without being read, and without gateway
keys the one owner may use all of `responses.max_bytes`."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping

import httpx
import pytest

from tests.hostile.fakes import data_uri
from tests.hostile.images import tiny_png
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
ATTACKER = {"key": "sk-hostile-store-attacker-0b1e", "name": "attacker"}
VICTIM = {"key": "sk-hostile-store-victim-77c2", "name": "victim"}
# Each stored image is an entry of its own: 1,600 requests of 64 distinct images are more
# entries than the memory backend's table of 100,000 holds, and more than a key's share
# (a quarter of `responses.max_bytes`) may keep.
IMAGES_PER_REQUEST = 64
ATTACK_REQUESTS = 1_600
CONNECTIONS = 2
# Nearly `requests.max_text_chars`: a stored record of about 8 MB (input and conversation).
LARGE_INPUT_CHARS = 4_000_000


@pytest.fixture(scope="module")
def gateway(gateways: Gateways) -> GatewayProcess:
    return gateways.start(
        gateway_config(
            server={"api_keys": [ATTACKER, VICTIM]},
            images={"max_images_per_request": IMAGES_PER_REQUEST},
        )
    )


def _headers(key: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def _create(gateway: GatewayProcess, key: dict[str, str], body: Mapping[str, object]) -> str:
    reply = httpx.post(f"{gateway.url}/v1/responses", json=body, headers=_headers(key), timeout=60)
    assert reply.status_code == 200, reply.text[:300]
    response_id = reply.json()["id"]
    assert isinstance(response_id, str)
    return response_id


def _pictures(request: int) -> dict[str, object]:
    parts: list[dict[str, object]] = [{"type": "input_text", "text": "what are these?"}]
    for index in range(IMAGES_PER_REQUEST):
        image = data_uri(tiny_png(request * IMAGES_PER_REQUEST + index))
        parts.append({"type": "input_image", "image_url": image})
    return {"model": "inspect", "input": [{"role": "user", "content": parts}]}


async def _flood(gateway: GatewayProcess, bodies: list[bytes]) -> list[int]:
    limits = httpx.Limits(max_connections=CONNECTIONS)
    headers = {**_headers(ATTACKER), "Content-Type": "application/json"}
    async with httpx.AsyncClient(
        base_url=gateway.url, headers=headers, timeout=120, limits=limits
    ) as client:
        turns = asyncio.Semaphore(CONNECTIONS)

        async def one(body: bytes) -> int:
            async with turns:
                return (await client.post("/v1/responses", content=body)).status_code

        return await asyncio.gather(*[one(body) for body in bodies])


def _not_stored(gateway: GatewayProcess, key: str) -> float:
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    pattern = rf'^gateway_responses_not_stored_total{{key="{key}",reason="full"}} (\S+)$'
    found = re.search(pattern, metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_one_keys_flood_of_stored_responses_keeps_another_keys(gateway: GatewayProcess) -> None:
    kept = _create(gateway, VICTIM, {"model": "inspect", "input": "remember this"})
    bodies = [json.dumps(_pictures(request)).encode() for request in range(ATTACK_REQUESTS)]

    with Watch(gateway, max_cpu_s=90):
        statuses = asyncio.run(_flood(gateway, bodies))
        url = f"{gateway.url}/v1/responses/{kept}"
        read = httpx.get(url, headers=_headers(VICTIM), timeout=10)
        print(f"statuses {sorted(set(statuses))}, victim's read {read.status_code}")  # noqa: T201
        assert statuses == [200] * ATTACK_REQUESTS  # served, whether stored or not
        assert read.status_code == 200, read.text[:300]
        continued = {"model": "inspect", "input": "and?", "previous_response_id": kept}
        _create(gateway, VICTIM, continued)
        # The attacker's responses past its share were refused, and said so.
        assert "share of it of key attacker" in gateway.log_text()
        assert _not_stored(gateway, "attacker") > 0
        assert _not_stored(gateway, "victim") == 0


def test_another_keys_large_response_is_refused_without_being_read(
    gateway: GatewayProcess,
) -> None:
    large = _create(gateway, VICTIM, {"model": "inspect", "input": "x" * LARGE_INPUT_CHARS})
    url = f"{gateway.url}/v1/responses/{large}"

    with Watch(gateway, max_cpu_s=0.4), httpx.Client(timeout=10) as client:
        statuses = [client.get(url, headers=_headers(ATTACKER)).status_code for _ in range(100)]
        print(f"statuses {sorted(set(statuses))}")  # noqa: T201
        assert statuses == [404] * 100

    assert httpx.get(url, headers=_headers(VICTIM), timeout=30).status_code == 200


def test_without_gateway_keys_the_one_owner_may_use_all_of_the_store(
    gateways: Gateways,
) -> None:
    """`api_keys: [""]` (an unset `${GATEWAY_API_KEY:-}`) asks for no key: every request has
    the same owner, whose share is all of `max_bytes`, not a quarter of it."""
    keyless = gateways.start(
        gateway_config(server={"api_keys": [""]}, responses={"max_bytes": 4 * 1024 * 1024})
    )
    body = {"model": "inspect", "input": "y" * 700_000}  # a record of about 1.4 MB

    with Watch(keyless, max_cpu_s=5):
        ids = [_create(keyless, VICTIM, body) for _ in range(2)]
        statuses = [
            httpx.get(f"{keyless.url}/v1/responses/{i}", timeout=30).status_code for i in ids
        ]
        print(f"statuses {statuses}")  # noqa: T201
        assert statuses == [200, 200]
