"""Where the pipeline's Pillow work happens: in worker threads, and once per content hash."""

from __future__ import annotations

import base64
import hashlib
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from app.errors import ImageTooLarge
from app.images import ImageNeeds
from app.images.cache import ImageCache
from app.images.intake import decode_data_uri, scan_data_uri
from app.images.process import open_image
from app.wire.hashed import HashedURI
from tests.conftest import make_config
from tests.unit.images.chat import make_pipeline, part, request_with, url_of
from tests.unit.images.conftest import Fetchers
from tests.unit.images.samples import data_uri, encode, picture

pytestmark = pytest.mark.anyio

INLINE_ONLY = ImageNeeds(urls=False, raw_bytes=True)


class Calls:
    """Wraps a module function to record the thread of each call, then calls the original."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self._function = function
        self.threads: list[int] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.threads.append(threading.get_ident())
        return self._function(*args, **kwargs)


@pytest.fixture
def processed(monkeypatch: pytest.MonkeyPatch) -> Calls:
    calls = Calls(open_image)
    monkeypatch.setattr("app.images.conversion.open_image", calls)
    return calls


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Calls:
    calls = Calls(decode_data_uri)
    monkeypatch.setattr("app.images.pipeline.decode_data_uri", calls)
    return calls


@pytest.fixture
def scanned(monkeypatch: pytest.MonkeyPatch) -> Calls:
    calls = Calls(scan_data_uri)
    monkeypatch.setattr("app.images.pipeline.scan_data_uri", calls)
    return calls


async def test_decoding_and_pillow_work_stay_off_the_event_loop(
    fetchers: Fetchers, processed: Calls, decoded: Calls, scanned: Calls
) -> None:
    loop_thread = threading.get_ident()
    uris = [data_uri(picture((64, 64), "BMP"), "image/bmp"), data_uri(picture((30, 20)))]

    await make_pipeline(fetchers.make()).prepare(
        request_with([part(u) for u in uris]), ImageNeeds()
    )

    # Both are scanned; the BMP needs converting, so only it is decoded whole and processed.
    assert len(scanned.threads) == 2
    assert len(decoded.threads) == len(processed.threads) == 1
    assert loop_thread not in processed.threads + decoded.threads + scanned.threads


async def test_a_data_uri_that_goes_on_as_it_is_is_never_decoded_whole(
    fetchers: Fetchers, processed: Calls, decoded: Calls
) -> None:
    noise = Image.frombytes("RGB", (900, 700), random.Random(5).randbytes(900 * 700 * 3))
    png = encode(noise, "PNG")  # about 1.9 MB: several decoding windows
    uri = data_uri(png)

    (prepared,) = await make_pipeline(fetchers.make()).prepare(
        request_with([part(uri)]), ImageNeeds()
    )

    assert decoded.threads == processed.threads == []
    assert prepared.upstream_url() == uri
    image = prepared.image
    assert image is not None
    assert (image.mime, image.width, image.height) == ("image/png", 900, 700)
    assert (image.size, image.sha256) == (len(png), hashlib.sha256(png).hexdigest())


@pytest.mark.parametrize("image_format", ["PNG", "BMP"])
async def test_the_same_image_is_processed_once(
    fetchers: Fetchers, processed: Calls, image_format: str
) -> None:
    cache = ImageCache()
    images = make_pipeline(fetchers.make(), cache=cache)
    request = request_with([part(data_uri(picture((64, 48), image_format)))])

    (first,) = await images.prepare(request, INLINE_ONLY)
    (second,) = await images.prepare(request, INLINE_ONLY)

    assert len(processed.threads) == 1
    assert (cache.hits, cache.misses) == (1, 1)
    assert second.image == first.image
    assert second.upstream_url() == first.upstream_url()


async def test_images_cache_bytes_bounds_what_is_kept(fetchers: Fetchers, processed: Calls) -> None:
    config = make_config(images={"cache_bytes": 0})
    cache = ImageCache(config.images.cache_bytes)
    images = make_pipeline(fetchers.make(), cache=cache)
    request = request_with([part(data_uri(picture((64, 48), "BMP")))])  # converted to PNG

    await images.prepare(request, INLINE_ONLY)
    await images.prepare(request, INLINE_ONLY)

    assert len(processed.threads) == 2
    assert (cache.hits, cache.misses) == (0, 2)


async def test_a_cache_hit_for_an_unconverted_image_returns_its_bytes(
    fetchers: Fetchers, processed: Calls
) -> None:
    png = picture((64, 48))
    images = make_pipeline(fetchers.make())
    request = request_with([part(data_uri(png))])

    await images.prepare(request, INLINE_ONLY)
    (again,) = await images.prepare(request, INLINE_ONLY)

    assert len(processed.threads) == 1
    assert again.image is not None
    assert again.image.data == png


async def test_bytes_no_upstream_reads_are_not_kept(fetchers: Fetchers) -> None:
    png = picture((64, 48))
    images = make_pipeline(fetchers.make())

    (image,) = await images.prepare(request_with([part(data_uri(png))]), ImageNeeds())

    assert image.upstream_url() == data_uri(png)
    assert image.image is not None
    assert image.image.data == b""
    assert image.image.size == len(png)


async def test_other_needs_are_other_cache_entries(fetchers: Fetchers, processed: Calls) -> None:
    cache = ImageCache()
    images = make_pipeline(fetchers.make(), cache=cache)
    uri = data_uri(picture((1024, 768)))

    await images.prepare(request_with([part(uri)]), INLINE_ONLY)
    await images.prepare(request_with([part(uri, detail="low")]), INLINE_ONLY)
    await images.prepare(request_with([part(uri)]), ImageNeeds(urls=False, max_side=100))

    assert len(processed.threads) == 3
    assert cache.hits == 0


async def test_the_cache_evicts_by_bytes(fetchers: Fetchers, processed: Calls) -> None:
    uris = [
        data_uri(picture((64, 48), "BMP", colour=c), "image/bmp") for c in ("red", "lime", "blue")
    ]
    converted = await make_pipeline(fetchers.make()).prepare(
        request_with([part(uris[0])]), INLINE_ONLY
    )
    assert converted[0].image is not None
    room_for_two = len(converted[0].image.data) * 5 // 2
    cache = ImageCache(max_bytes=room_for_two)
    images = make_pipeline(fetchers.make(), cache=cache)
    processed.threads.clear()

    for uri in [*uris, uris[2], uris[0]]:
        await images.prepare(request_with([part(uri)]), INLINE_ONLY)

    assert len(processed.threads) == 4  # the first image was evicted by the third
    assert (cache.hits, cache.misses) == (1, 4)


def hashed(uri: str) -> HashedURI:
    """`uri` as the response store gives it back: with its image's SHA-256."""
    payload = uri.partition(",")[2]
    return HashedURI(uri, hashlib.sha256(base64.b64decode(payload)).hexdigest())


async def test_a_hashed_uri_seen_before_is_neither_decoded_nor_hashed_again(
    fetchers: Fetchers, decoded: Calls, scanned: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = make_pipeline(fetchers.make())
    uri = data_uri(picture((640, 480)))
    (first,) = await images.prepare(request_with([part(uri)]), ImageNeeds())
    request = request_with([part(hashed(uri))])
    hashes = Calls(hashlib.sha256)
    monkeypatch.setattr(hashlib, "sha256", hashes)

    (again,) = await images.prepare(request, ImageNeeds())

    assert isinstance(url_of(request, 0, 1), HashedURI)  # validation kept it as it is
    assert len(scanned.threads) == 1  # the first time only
    assert hashes.threads == decoded.threads == []
    assert again.upstream_url() is url_of(request, 0, 1)  # the same string, not a copy
    assert again.image == first.image
    assert again.facts() == first.facts()


async def test_a_hashed_uri_is_checked_in_full_where_it_was_not_seen(
    fetchers: Fetchers, scanned: Calls
) -> None:
    images = make_pipeline(fetchers.make())
    uri = data_uri(picture((640, 480)))
    await images.prepare(request_with([part(uri)]), ImageNeeds(max_side=2048))

    for needs in (ImageNeeds(), ImageNeeds(max_side=2048), ImageNeeds(max_side=2048)):
        (image,) = await images.prepare(request_with([part(hashed(uri))]), needs)
        assert image.upstream_url() == uri

    # Another target is another check; once seen for it, the URI is taken as it is.
    assert len(scanned.threads) == 2


async def test_a_hashed_uri_is_still_held_to_the_upstream_s_byte_limit(
    fetchers: Fetchers, scanned: Calls
) -> None:
    images = make_pipeline(fetchers.make())
    png = picture((640, 480))
    uri = data_uri(png)
    await images.prepare(request_with([part(uri)]), ImageNeeds())
    smaller = ImageNeeds(max_bytes=len(png) - 1)

    with pytest.raises(ImageTooLarge) as refused:
        await images.prepare(request_with([part(hashed(uri))]), smaller)

    assert refused.value.param == "messages[0].content[1].image_url"
    (fits,) = await images.prepare(
        request_with([part(hashed(uri))]), ImageNeeds(max_bytes=len(png))
    )
    assert fits.image is not None
    assert fits.image.size == len(png)
    assert len(scanned.threads) == 1


async def test_a_hashed_uri_for_an_upstream_that_reads_bytes_is_decoded(
    fetchers: Fetchers, decoded: Calls
) -> None:
    png = picture((64, 48))
    images = make_pipeline(fetchers.make())
    await images.prepare(request_with([part(data_uri(png))]), INLINE_ONLY)

    (again,) = await images.prepare(request_with([part(hashed(data_uri(png)))]), INLINE_ONLY)

    assert len(decoded.threads) == 2
    assert again.image is not None
    assert again.image.data == png


async def test_a_hashed_uri_whose_conversion_is_kept_is_not_converted_again(
    fetchers: Fetchers, processed: Calls, decoded: Calls
) -> None:
    images = make_pipeline(fetchers.make())
    uri = data_uri(picture((64, 48), "BMP"), "image/bmp")
    (first,) = await images.prepare(request_with([part(uri)]), ImageNeeds())

    (again,) = await images.prepare(request_with([part(hashed(uri))]), ImageNeeds())

    assert len(processed.threads) == len(decoded.threads) == 1
    assert first.replaced
    assert again.replaced
    assert again.upstream_url() == first.upstream_url()
    assert again.upstream_url().startswith("data:image/png;base64,")


async def test_a_hashed_uri_that_names_the_wrong_type_goes_on_under_the_right_one(
    fetchers: Fetchers,
) -> None:
    images = make_pipeline(fetchers.make())
    png = picture((64, 48))
    await images.prepare(request_with([part(data_uri(png))]), ImageNeeds())
    mislabelled = data_uri(png, "image/jpeg")

    (image,) = await images.prepare(request_with([part(hashed(mislabelled))]), ImageNeeds())

    assert image.upstream_url() == data_uri(png)
