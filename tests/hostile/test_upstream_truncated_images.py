"""Images that go upstream as they came must be whole: truncated files are 400 invalid_image."""

from __future__ import annotations

import httpx
import pytest

from tests.hostile.fakes import HostileUpstream, data_uri
from tests.hostile.images import MIME, bare_jpeg_header, truncated
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
BROKEN = {
    # A truncated WEBP already failed: Pillow decodes it whole to read its header.
    **{f"truncated {kind}": (truncated(kind), MIME[kind]) for kind in MIME if kind != "WEBP"},
    "bare JPEG header claiming 2000x2000": (bare_jpeg_header(), "image/jpeg"),
}


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    """`openai` takes every format as it is (a data URI is only scanned), and Prediction Guard
    takes JPEG and PNG as they are (a URL is fetched, then checked whole)."""
    base = {"base_url": hostile_upstream.base_url("predictionguard"), "retries": 0}
    models = [
        {"name": "as-it-is", "provider": "openai", **base},
        {"name": "pg", "provider": "predictionguard", "api_key": "pg-upstream-key", **base},
    ]
    images = {"allow_private_networks": True}
    return gateways.start(gateway_config(models, images=images))


def _ask(gateway: GatewayProcess, model: str, url: str) -> httpx.Response:
    part = {"type": "image_url", "image_url": {"url": url}}
    body = {"model": model, "messages": [{"role": "user", "content": [part]}]}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_image_in_a_data_uri_passed_on_as_it_is_is_a_400(
    gateway: GatewayProcess, name: str
) -> None:
    data, mime = BROKEN[name]
    with Watch(gateway):
        reply = _ask(gateway, "as-it-is", data_uri(data, mime))
    assert reply.status_code == 400, reply.text[:300]
    assert reply.json()["error"]["code"] == "invalid_image"


@pytest.mark.parametrize("name", [name for name in BROKEN if "GIF" not in name])
def test_a_broken_fetched_image_sent_on_unconverted_is_a_400(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream, name: str
) -> None:
    data, mime = BROKEN[name]
    url = hostile_upstream.put_image("broken", data, mime)
    with Watch(gateway):
        reply = _ask(gateway, "pg", url)
    assert reply.status_code == 400, reply.text[:300]
    assert reply.json()["error"]["code"] == "invalid_image"
