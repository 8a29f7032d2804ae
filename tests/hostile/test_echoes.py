"""Errors about what a client sent quote a short prefix of it, never kilobytes of a URL."""

from __future__ import annotations

import httpx
import pytest

from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e

LONG_PATH = "a" * 8192
# The message's own words, the quoted prefix of 100 characters and the rest of a sentence.
SHORT_MESSAGE = 300


@pytest.fixture(scope="module")
def gateway(gateways: Gateways) -> GatewayProcess:
    # Every image URL fetched and checked by the gateway, even for `inspect`.
    return gateways.start(gateway_config(images={"fetch_remote": "always"}))


def image_request(url: str) -> dict[str, object]:
    part = {"type": "image_url", "image_url": {"url": url}}
    return {"model": "inspect", "messages": [{"role": "user", "content": [part]}]}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        pytest.param("GET", f"/v1/models/{LONG_PATH}", None, 404, id="model id in the path"),
        pytest.param(
            "POST",
            "/v1/chat/completions",
            image_request(f"http://127.0.0.1/{LONG_PATH}"),
            400,
            id="refused image URL",
        ),
        pytest.param(
            "POST",
            "/v1/chat/completions",
            image_request(f"data:text/{LONG_PATH};base64,AAAA"),
            400,
            id="data URI type",
        ),
    ],
)
def test_error_messages_quote_a_short_prefix_of_long_paths(
    gateway: GatewayProcess, method: str, path: str, body: object, status: int
) -> None:
    with Watch(gateway):
        reply = httpx.request(method, f"{gateway.url}{path}", json=body, timeout=30)

    assert reply.status_code == status
    message = reply.json()["error"]["message"]
    assert "aaaaaaaaaa" in message
    assert len(message) < SHORT_MESSAGE
