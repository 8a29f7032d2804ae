"""What a client did not mean to send, against the server `python -m app` starts: the GPS
position and the owner in a photo's EXIF (and its XMP and comments) never reach an upstream,
whichever way the image goes (a data URI passed on, a URL fetched and inlined), its pixels and
orientation untouched; `images.keep_metadata` keeps them. An upstream error that quotes the
prompt stays out of the log but at debug level."""

from __future__ import annotations

import base64
import functools
import io

import httpx
import pytest
from PIL import Image

from tests.hostile.fakes import HostileUpstream, data_uri
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
SECRETS = (b"Jane Doe", b"SN-4411-0097", b"Hidden Valley Road")
PROMPT = "SECRET-PROMPT-7d21 about my neighbour's health"


@functools.cache
def photo(side: int) -> bytes:
    """A JPEG as a phone writes it: where it was taken, whose camera, which way up."""
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turned
    exif[0x013B] = "Jane Doe"  # artist
    exif[0xA430] = "Jane Doe"  # camera owner
    exif[0xA431] = "SN-4411-0097"  # body serial number
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 24.0), 27: "Hidden Valley Road"})
    out = io.BytesIO()
    Image.effect_noise((side, side), 60).convert("RGB").save(
        out, "JPEG", exif=exif, comment=b"Jane Doe's garden"
    )
    return out.getvalue()


def _gateway(gateways: Gateways, upstream: HostileUpstream, **images: object) -> GatewayProcess:
    record = {"base_url": upstream.base_url("record"), "retries": 0}
    models: list[dict[str, object]] = [
        {"name": "openai", "provider": "openai", **record},
        {
            "name": "pg",
            "provider": "predictionguard",
            "api_key": "pg-upstream-key",
            "base_url": upstream.base_url("record"),
            "retries": 0,
        },
        {"name": "quoting", "provider": "openai", "base_url": upstream.base_url("quote-prompt")},
    ]
    images = {"allow_private_networks": True, **images}
    return gateways.start(gateway_config(models, images=images))


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    return _gateway(gateways, hostile_upstream)


def _sent_image(upstream: HostileUpstream) -> bytes:
    """The image bytes the upstream got, from the data URI in its body."""
    messages = upstream.last_body["messages"]
    assert isinstance(messages, list)
    url = messages[0]["content"][0]["image_url"]["url"]
    return base64.b64decode(url.split(",", 1)[1])


def _ask(gateway: GatewayProcess, model: str, url: str) -> httpx.Response:
    content = [{"type": "image_url", "image_url": {"url": url}}]
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)


def _upright_pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        orientation = image.getexif().get(0x0112)
        return bytes([orientation or 0]) + image.convert("RGB").tobytes()


@pytest.mark.parametrize(
    ("model", "how", "side"),
    [
        ("openai", "data", 64),  # a small data URI, parsed with the body
        ("openai", "data", 400),  # a large one, read from the body as it is
        ("pg", "url", 400),  # fetched, and inlined for an upstream that takes no URL
        ("pg", "data", 400),
    ],
)
def test_location_and_identity_never_reach_the_upstream(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream, model: str, how: str, side: int
) -> None:
    hostile_upstream.reset()
    image = photo(side)
    assert all(secret in image for secret in SECRETS)
    url = hostile_upstream.put_image("photo.jpg", image, "image/jpeg") if how == "url" else None
    with Watch(gateway, max_cpu_s=1):
        reply = _ask(gateway, model, url or data_uri(image, "image/jpeg"))
        assert reply.status_code == 200, reply.text[:300]
        sent = _sent_image(hostile_upstream)
        leaked = [secret for secret in SECRETS if secret in sent]
        print(f"{model} by {how}, {len(image)} bytes: leaked {leaked}")  # noqa: T201
        assert leaked == []
        assert _upright_pixels(sent) == _upright_pixels(image)  # same pixels, same way up


def test_an_operator_may_keep_the_metadata(
    gateways: Gateways, hostile_upstream: HostileUpstream
) -> None:
    keeping = _gateway(gateways, hostile_upstream, keep_metadata=True)
    hostile_upstream.reset()
    image = photo(400)
    assert _ask(keeping, "openai", data_uri(image, "image/jpeg")).status_code == 200
    assert _sent_image(hostile_upstream) == image


def test_an_upstream_error_quoting_the_prompt_stays_out_of_the_log(
    gateway: GatewayProcess,
) -> None:
    body = {"model": "quoting", "messages": [{"role": "user", "content": PROMPT}]}
    with Watch(gateway, max_cpu_s=1):
        reply = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)
        print(f"quoting upstream: {reply.status_code}")  # noqa: T201
        assert reply.status_code == 400
        assert PROMPT in reply.json()["error"]["message"]  # the client may see its own prompt
        assert PROMPT not in gateway.log_text()
