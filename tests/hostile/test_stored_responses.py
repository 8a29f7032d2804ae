"""Stored responses under attack, against the server `python -m app` starts: another key's
large response is refused without being read, and without gateway keys the one owner may use
all of `responses.max_bytes`."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import pytest

from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
ATTACKER = {"key": "sk-hostile-store-attacker-0b1e", "name": "attacker"}
VICTIM = {"key": "sk-hostile-store-victim-77c2", "name": "victim"}
# Nearly `requests.max_text_chars`: a stored record of about 8 MB (input and conversation).
LARGE_INPUT_CHARS = 4_000_000


@pytest.fixture(scope="module")
def gateway(gateways: Gateways) -> GatewayProcess:
    return gateways.start(
        gateway_config(
            server={"api_keys": [ATTACKER, VICTIM]},
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
