"""Decoding data URIs: an image type must be declared, the payload valid base64 under the cap."""

from __future__ import annotations

import base64

import pytest

from app.errors import ImageError, ImageTooLarge
from app.images.intake import decode_data_uri
from tests.unit.images.samples import data_uri, picture

PARAM = "messages[0].content[0].image_url"
PNG = picture()


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
def test_image_data_uris_decode_to_their_bytes(uri: str) -> None:
    assert decode_data_uri(uri, PARAM, max_bytes=1_000_000) == PNG


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
def test_bad_data_uris_are_invalid_images(uri: str) -> None:
    with pytest.raises(ImageError) as caught:
        decode_data_uri(uri, PARAM, max_bytes=1_000_000)

    assert type(caught.value) is ImageError
    assert caught.value.param == PARAM
    assert caught.value.code == "invalid_image"


@pytest.mark.parametrize("size", [101, 1_000, 1_000_000])
def test_payloads_over_the_cap_are_too_large(size: int) -> None:
    uri = "data:image/png;base64," + base64.b64encode(bytes(size)).decode()

    with pytest.raises(ImageTooLarge) as caught:
        decode_data_uri(uri, PARAM, max_bytes=100)

    assert caught.value.param == PARAM


def test_a_payload_at_the_cap_is_accepted() -> None:
    uri = "data:image/png;base64," + base64.b64encode(bytes(100)).decode()

    assert len(decode_data_uri(uri, PARAM, max_bytes=100)) == 100
