"""An upstream echoing its key disguised (upper-cased, base64, URL-encoded) leaks it nowhere."""

from __future__ import annotations

import base64
from urllib.parse import quote

import httpx
import pytest

from tests.hostile.fakes import HostileUpstream
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
UPSTREAM_KEY = "sk-hostile/Echo+Key=7c1e9a&d42f"


def disguises(key: str) -> list[str]:
    """What the echoing upstream sends back: the key upper-cased, base64 (standard and
    URL-safe, alone and inside `user:<key>`), URL-encoded. For the base64 in a longer text,
    the characters that encode only the key's bytes."""
    basic = base64.b64encode(f"user:{key}".encode()).decode()
    return [
        key.upper(),
        base64.b64encode(key.encode()).decode(),
        base64.urlsafe_b64encode(key.encode()).decode(),
        basic[8 : 8 + len(key) * 4 // 3 - 2],
        quote(key, safe=""),
    ]


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    model = {
        "name": "echo",
        "provider": "openai",
        "base_url": hostile_upstream.base_url("echo-key"),
        "api_key": UPSTREAM_KEY,
        "retries": 0,
    }
    return gateways.start(gateway_config([model]))


def test_an_echoed_key_in_disguise_reaches_neither_client_nor_log(gateway: GatewayProcess) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    with Watch(gateway):
        reply = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)
    assert reply.status_code == 400, reply.text
    message = reply.json()["error"]["message"]
    assert "[redacted]" in message, message  # the upstream's message is there, scrubbed
    log = gateway.log_text()
    assert "upstream answered 400" in log
    for disguise in disguises(UPSTREAM_KEY):
        assert disguise not in message, message
        assert disguise not in log, disguise
