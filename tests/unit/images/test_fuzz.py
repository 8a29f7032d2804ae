"""Whatever a client sends as an image, the answer is the image or a 400 `ImageError`, never a
crash: arbitrary strings as data URIs, arbitrary bytes, and damaged PNG/JPEG/GIF/WEBP/BMP files."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.config import ImagesConfig
from app.errors import ImageError
from app.images import ImageNeeds, ImagePipeline, PreparedImage
from app.images.addresses import parse_numeric_host, refusal_reason
from app.images.cache import ImageCache
from app.images.fetch import ImageFetcher
from app.images.intake import decode_data_uri, scan_data_uri
from app.images.process import WEB_FORMATS, Target, process_image
from tests.unit.images.chat import part, request_with
from tests.unit.images.conftest import TableResolver, shared_ssl_context
from tests.unit.images.samples import animated_gif, picture, two_colour_jpeg

# Pillow warns about damaged files it can still read; outside the tests a warning is no failure.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

T = TypeVar("T")

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MAX_PIXELS = 1_000_000

SEEDS = {
    "png": picture((16, 12)),
    "png-rgba": picture((16, 12), mode="RGBA", colour=(0, 0, 255, 100)),
    "bmp": picture((16, 12), "BMP"),
    "webp": picture((16, 12), "WEBP"),
    "tiff": picture((16, 12), "TIFF"),
    "jpeg-exif": two_colour_jpeg((16, 12), orientation=6),
    "gif-animated": animated_gif((8, 6)),
}


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid image with a few bytes flipped, cut, inserted or dropped."""
    data = bytearray(draw(st.sampled_from(list(SEEDS.values()))))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data) - 1)) if data else 0
        edit = draw(st.sampled_from(["flip", "cut", "insert", "drop"]))
        if edit == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif edit == "cut":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


IMAGE_BYTES = st.one_of(st.binary(max_size=1024), damaged(), st.sampled_from(list(SEEDS.values())))
TARGETS = st.builds(
    Target,
    formats=st.sampled_from(
        [WEB_FORMATS, frozenset({"image/png", "image/jpeg"}), frozenset({"image/jpeg"})]
    ),
    max_side=st.sampled_from([None, 4, 8, 64]),
    low_detail=st.booleans(),
)
DECLARED = st.sampled_from(["image/png", "image/jpeg", "image/gif", "text/plain", "IMAGE/X", ""])
BASE64 = st.text(alphabet="ABCDEFabcdef0123456789+/=-_ \n%", max_size=200)
DATA_URIS = st.one_of(
    st.text(max_size=200),
    st.builds("data:{}".format, st.text(max_size=200)),
    st.builds("data:{};base64,{}".format, DECLARED, BASE64),
    st.builds(
        lambda mime, data: f"data:{mime};base64,{base64.b64encode(data).decode()}",
        DECLARED,
        IMAGE_BYTES,
    ),
)
URLS = st.one_of(
    DATA_URIS,
    st.builds("http://{}/cat.png".format, st.text(max_size=40)),
    st.builds("https://{}".format, st.text(alphabet="[]:%@.0123456789abcdefx/?#", max_size=40)),
).filter(bool)  # the request schema refuses empty URLs before the pipeline sees them


def image_or_error(call: Callable[[], T]) -> T | ImageError:
    try:
        return call()
    except ImageError as error:
        return error


def max_side(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        return max(image.size)


def names_a_public_address(url: str) -> bool:
    """Whether fetching `url` would connect to a public address (the tests never do)."""
    try:
        address = parse_numeric_host(urlsplit(url).hostname or "")
    except ValueError:
        return False
    return address is not None and refusal_reason(address, allow_private=False) is None


@FUZZ
@given(uri=DATA_URIS)
def test_decoding_any_string_gives_bytes_or_an_image_error(uri: str) -> None:
    outcome = image_or_error(
        lambda: decode_data_uri(uri, "messages[0].content[0].image_url", max_bytes=4096)
    )

    if isinstance(outcome, ImageError):
        assert outcome.param == "messages[0].content[0].image_url"
    else:
        assert 0 < len(outcome) <= 4096


@FUZZ
@given(uri=DATA_URIS)
def test_scanning_any_string_agrees_with_decoding_it(uri: str) -> None:
    param = "messages[0].content[0].image_url"
    decoded = image_or_error(lambda: decode_data_uri(uri, param, max_bytes=4096))
    scanned = image_or_error(lambda: scan_data_uri(uri, param, 4096, lambda head: head))

    if isinstance(decoded, ImageError):
        assert isinstance(scanned, ImageError)
        assert (type(scanned), scanned.message) == (type(decoded), decoded.message)
    else:
        assert scanned == (decoded, len(decoded), hashlib.sha256(decoded).hexdigest())


@pytest.mark.parametrize("seed", SEEDS)
def test_every_truncation_of_a_valid_image_gives_an_image_or_an_image_error(seed: str) -> None:
    data = SEEDS[seed]
    targets = [Target(), Target(frozenset({"image/png", "image/jpeg"}), max_side=8)]
    crashes = []
    for length, target in itertools.product(range(len(data)), targets):
        try:
            process_image(data[:length], target, max_pixels=MAX_PIXELS)
        except ImageError:
            pass
        except Exception as error:  # every crash, not just the first
            crashes.append(f"{length} bytes, {target}: {type(error).__name__}: {error}")

    assert crashes == []


@FUZZ
@given(data=IMAGE_BYTES, target=TARGETS)
def test_processing_any_bytes_gives_an_image_or_an_image_error(data: bytes, target: Target) -> None:
    outcome = image_or_error(lambda: process_image(data, target, max_pixels=MAX_PIXELS))

    if isinstance(outcome, ImageError):
        assert outcome.status_code == 400
    elif outcome.converted:
        assert outcome.mime in target.formats
        assert max(outcome.width, outcome.height) <= (target.side_limit or max_side(data))


@pytest.mark.anyio
@FUZZ
@given(
    urls=st.lists(URLS, min_size=1, max_size=3),
    detail=st.sampled_from([None, "low", "high", "auto"]),
    urls_taken=st.booleans(),
)
async def test_preparing_any_request_gives_images_or_an_image_error(
    urls: list[str], detail: str | None, urls_taken: bool
) -> None:
    assume(urls_taken or not any(names_a_public_address(url) for url in urls))
    fetcher = ImageFetcher(
        timeout_s=1,
        max_bytes=4096,
        allow_private_networks=False,
        resolver=TableResolver(),
        ssl_context=shared_ssl_context(),
    )
    images = ImagePipeline(ImagesConfig(max_image_pixels=MAX_PIXELS), fetcher, ImageCache())
    request = request_with([part(url, detail) for url in urls])
    outcome: list[PreparedImage] | ImageError
    try:
        outcome = await images.prepare(request, ImageNeeds(urls=urls_taken))
    except ImageError as error:
        outcome = error
    finally:
        await fetcher.aclose()

    if isinstance(outcome, ImageError):
        assert outcome.param is not None
        assert outcome.param.startswith("messages[0].content[")
    else:
        assert len(outcome) == len(urls)
