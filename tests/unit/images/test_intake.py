"""Decoding data URIs: an image type must be declared, the payload valid base64 under the cap."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest

from app.errors import ImageError, ImageTooLarge
from app.images.intake import WINDOW_CHARS, decode_data_uri, scan_data_uri
from tests.unit.images.samples import data_uri, picture

PARAM = "messages[0].content[0].image_url"
PNG = picture()


def scanned(uri: str, param: str, max_bytes: int) -> bytes:
    """`scan_data_uri` held to `decode_data_uri`'s answer: the head of a small image is all of
    it, and its size and hash are those of the same bytes."""
    scanned = scan_data_uri(uri, param, max_bytes, keep)
    assert scanned is not None
    head, size, sha256 = scanned
    assert (size, sha256) == (len(head), hashlib.sha256(head).hexdigest())
    return head


def keep(head: bytes) -> bytes:
    """A probe that wants every image, and hands back the first bytes it saw."""
    return head


@pytest.fixture(params=[decode_data_uri, scanned], ids=["decoded", "scanned"])
def decode(request: pytest.FixtureRequest) -> Callable[[str, str, int], bytes]:
    function: Callable[[str, str, int], bytes] = request.param
    return function


@pytest.mark.parametrize(
    "uri",
    [
        data_uri(PNG),
        data_uri(PNG, "image/jpeg"),
        data_uri(PNG, "IMAGE/PNG"),
        data_uri(PNG).replace("data:", "DATA:", 1),
        data_uri(PNG).replace(";base64", ";charset=binary;base64", 1),
    ],
)
def test_image_data_uris_decode_to_their_bytes(
    uri: str, decode: Callable[[str, str, int], bytes]
) -> None:
    assert decode(uri, PARAM, 1_000_000) == PNG


@pytest.mark.parametrize(
    "uri",
    [
        data_uri(PNG, "text/plain"),
        data_uri(PNG, "application/octet-stream"),
        data_uri(PNG, ""),
        f"data:image/png,{PNG.hex()}",
        "data:image/png;base64",
        "data:image/png;base64,",
        "data:image/png;base64,not base64!",
        "data:image/png;base64,iVBORw0KGgo",
        "data:image/png;base64,iVBORw0K\u00e9Ggo=",
        "image/png;base64,iVBORw0KGgo=",
    ],
)
def test_bad_data_uris_are_invalid_images(
    uri: str, decode: Callable[[str, str, int], bytes]
) -> None:
    with pytest.raises(ImageError) as caught:
        decode(uri, PARAM, 1_000_000)

    assert type(caught.value) is ImageError
    assert caught.value.param == PARAM
    assert caught.value.code == "invalid_image"


@pytest.mark.parametrize("size", [101, 1_000, 1_000_000])
def test_payloads_over_the_cap_are_too_large(
    size: int, decode: Callable[[str, str, int], bytes]
) -> None:
    uri = "data:image/png;base64," + base64.b64encode(bytes(size)).decode()

    with pytest.raises(ImageTooLarge) as caught:
        decode(uri, PARAM, 100)

    assert caught.value.param == PARAM


def test_a_payload_at_the_cap_is_accepted(decode: Callable[[str, str, int], bytes]) -> None:
    uri = "data:image/png;base64," + base64.b64encode(bytes(100)).decode()

    assert len(decode(uri, PARAM, 100)) == 100


def test_a_scan_reads_every_window() -> None:
    data = bytes(range(256)) * (WINDOW_CHARS // 100)  # about 1.3 MB of base64: 3 windows
    uri = "data:image/png;base64," + base64.b64encode(data).decode()

    scanned = scan_data_uri(uri, PARAM, 10_000_000, keep)

    assert scanned is not None
    head, size, sha256 = scanned
    assert data.startswith(head)
    assert (size, sha256) == (len(data), hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("damage", ["!", "=", "\u00e9"])
def test_a_scan_refuses_damage_past_the_first_window(damage: str) -> None:
    payload = base64.b64encode(bytes(WINDOW_CHARS)).decode()
    at = WINDOW_CHARS + 8
    uri = "data:image/png;base64," + payload[:at] + damage + payload[at + 1 :]

    with pytest.raises(ImageError, match="not valid base64"):
        scan_data_uri(uri, PARAM, 10_000_000, keep)
