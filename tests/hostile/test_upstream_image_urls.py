"""Image URLs that can't be parsed, and cloud metadata addresses, are 400s in every mode."""

from __future__ import annotations

import httpx
import pytest

from tests.hostile.fakes import HostileUpstream
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
# Refused with `allow_private_networks: true` too (169.254.169.254 and fd00:ec2::254 always were).
# Names that resolve to them are the fetcher's unit tests' (tests/unit/images/test_fetch.py):
# a process resolves names through the system, which no test can make answer with these.
METADATA = [
    "169.254.170.2",  # AWS ECS task credentials
    "169.254.170.23",  # AWS EKS pod identity
    "[fd00:ec2::23]",  # AWS EKS pod identity over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud
    "168.63.129.16",  # Azure WireServer
    "[::ffff:169.254.170.2]",  # v4-mapped
    "0xa9.0xfe.0xaa.2",  # 169.254.170.2 spelled in hex
]
UNPARSABLE_HOSTS = ["a..b.com", "a" * 64 + ".example.com", "xn--a.example.com"]


def _model(upstream: HostileUpstream) -> dict[str, object]:
    """Prediction Guard: it takes images inline, so the gateway fetches every URL."""
    return {
        "name": "pg",
        "provider": "predictionguard",
        "base_url": upstream.base_url("predictionguard"),
        "api_key": "pg-upstream-key",
        "retries": 0,
    }


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    """A lab gateway: private networks allowed, which must not open the metadata services."""
    images = {"allow_private_networks": True, "fetch_timeout_s": 2}
    return gateways.start(gateway_config([_model(hostile_upstream)], images=images))


def _ask(url: str, image_url: str) -> httpx.Response:
    part = {"type": "image_url", "image_url": {"url": image_url}}
    body = {"model": "pg", "messages": [{"role": "user", "content": [part]}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)


@pytest.mark.parametrize("host", UNPARSABLE_HOSTS)
def test_an_unparsable_image_host_is_a_400(gateway: GatewayProcess, host: str) -> None:
    with Watch(gateway):
        reply = _ask(gateway.url, f"http://{host}/cat.png")
    assert reply.status_code == 400, reply.text[:300]
    assert reply.json()["error"]["param"] == "messages[0].content[0].image_url"


@pytest.mark.parametrize("host", METADATA)
def test_metadata_addresses_stay_refused_with_private_networks_allowed(
    gateway: GatewayProcess, host: str
) -> None:
    with Watch(gateway):
        reply = _ask(gateway.url, f"http://{host}/latest/meta-data/")
    assert reply.status_code == 400, reply.text[:300]
    assert reply.json()["error"]["code"] == "image_url_forbidden", reply.text[:300]
