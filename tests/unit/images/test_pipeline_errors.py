"""Every image refusal names the part it is about: `messages[i].content[j].image_url`."""

from __future__ import annotations

import base64

import pytest

from app.errors import (
    ImageError,
    ImageFetchFailed,
    ImageTooLarge,
    ImageURLForbidden,
)
from app.images import ImageNeeds
from tests.unit.images.chat import make_pipeline, part, request_with
from tests.unit.images.conftest import Fetchers
from tests.unit.images.local_server import LocalServer
from tests.unit.images.samples import data_uri, picture

pytestmark = pytest.mark.anyio

GOOD = data_uri(picture())
PARAM = "messages[1].content[3].image_url"

BAD_PARTS = [
    ("data:image/png;base64,%%%not-base64", ImageError),
    (data_uri(picture(), "text/plain"), ImageError),
    ("data:image/png;base64," + base64.b64encode(b"plain text, not pixels").decode(), ImageError),
    (data_uri(picture((1, 64))), ImageError),
    (data_uri(picture((400, 400))), ImageTooLarge),
    ("data:image/png;base64," + base64.b64encode(bytes(3_000)).decode(), ImageTooLarge),
    ("ftp://images.example.com/cat.png", ImageURLForbidden),
    ("file:///etc/passwd", ImageURLForbidden),
    ("http://169.254.169.254/latest/meta-data/", ImageURLForbidden),
    ("http://unresolvable.example/cat.png", ImageFetchFailed),
]


@pytest.mark.parametrize(("url", "error"), BAD_PARTS)
async def test_each_refusal_carries_the_parts_param(
    fetchers: Fetchers, url: str, error: type[ImageError]
) -> None:
    request = request_with([part(GOOD)], [part(GOOD), part(GOOD), part(url), part(GOOD)])
    images = make_pipeline(fetchers.make(), max_image_pixels=100_000)

    with pytest.raises(ImageError) as caught:
        await images.prepare(request, ImageNeeds(urls=False, max_bytes=2_000, min_side=2))

    assert type(caught.value) is error
    assert caught.value.param == PARAM
    assert caught.value.status_code == 400
    assert caught.value.to_envelope()["error"] == {
        "message": caught.value.message,
        "type": "invalid_request_error",
        "param": PARAM,
        "code": error.code,
    }


async def test_a_failed_fetch_carries_the_parts_param(
    fetchers: Fetchers, server: LocalServer
) -> None:
    request = request_with([part(GOOD)], [part(GOOD), part(GOOD), part(server.url("/gone.png"))])

    with pytest.raises(ImageFetchFailed) as caught:
        await make_pipeline(fetchers.make(allow_private=True)).prepare(
            request, ImageNeeds(urls=False)
        )

    assert caught.value.param == PARAM
    assert "404" in caught.value.message
