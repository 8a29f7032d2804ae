"""The image pipeline: each image part checked and delivered in the form its upstream takes."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from app.errors import ImageError, ImageTooLarge, ImageURLForbidden, TooManyImages
from app.images import ImageNeeds, with_images
from app.wire.schemas import TextPart
from tests.unit.images.chat import make_pipeline, part, request_with, sent_url_of, url_of
from tests.unit.images.conftest import Fetchers
from tests.unit.images.local_server import Exchange, LocalServer
from tests.unit.images.samples import data_uri, open_image, picture

pytestmark = pytest.mark.anyio

PNG = picture((64, 48), colour="green")
PNG_URI = data_uri(PNG)
BMP_URI = data_uri(picture((64, 48), "BMP"), "image/bmp")
TAKES_URLS = ImageNeeds(urls=True)
INLINE_ONLY = ImageNeeds(urls=False)


def serve(server: LocalServer, body: bytes = PNG, path: str = "/cat.png") -> str:
    async def handler(exchange: Exchange) -> None:
        await exchange.respond(200, body)

    server.routes[path] = handler
    return server.url(path)


async def test_urls_go_unfetched_to_upstreams_that_fetch(
    fetchers: Fetchers, server: LocalServer
) -> None:
    url = serve(server)
    request = request_with([part(url)])

    prepared = await make_pipeline(fetchers.make(allow_private=True)).prepare(request, TAKES_URLS)

    assert [(image.source, image.image, image.upstream_url()) for image in prepared] == [
        ("url", None, url)
    ]
    assert with_images(request, prepared)[0] is request
    assert server.total_hits == 0


@pytest.mark.parametrize(
    ("needs", "fetch_remote"),
    [(INLINE_ONLY, "auto"), (TAKES_URLS, "always"), (INLINE_ONLY, "always")],
)
async def test_urls_are_fetched_and_inlined_when_needed_or_asked(
    fetchers: Fetchers, server: LocalServer, needs: ImageNeeds, fetch_remote: str
) -> None:
    request = request_with([part(serve(server))])
    images = make_pipeline(fetchers.make(allow_private=True), fetch_remote=fetch_remote)

    (prepared,) = await images.prepare(request, needs)

    assert prepared.image is not None
    assert (prepared.image.mime, prepared.image.width, prepared.image.height) == (
        "image/png",
        64,
        48,
    )
    assert prepared.replaced
    assert prepared.upstream_url() == PNG_URI
    assert sent_url_of(with_images(request, [prepared]), 0, 1) == PNG_URI
    assert server.hits["/cat.png"] == 1


async def test_urls_are_inlined_where_they_cannot_mix_with_data_uris(
    fetchers: Fetchers, server: LocalServer
) -> None:
    url = serve(server)
    images = make_pipeline(fetchers.make(allow_private=True))
    needs = ImageNeeds(urls=True, mixed=False)

    mixed = await images.prepare(request_with([part(url), part(PNG_URI)]), needs)
    alone = await images.prepare(request_with([part(url)]), needs)

    assert [image.upstream_url() for image in mixed] == [PNG_URI, PNG_URI]
    assert alone[0].image is None
    assert server.hits["/cat.png"] == 1


async def test_urls_passed_on_skip_the_address_check_but_not_the_scheme_check(
    fetchers: Fetchers,
) -> None:
    images = make_pipeline(fetchers.make())
    private = request_with([part("http://10.0.0.1/cat.png")])

    (passed,) = await images.prepare(private, TAKES_URLS)
    with pytest.raises(ImageURLForbidden) as caught:
        await images.prepare(request_with([part("ftp://example.com/cat.png")]), TAKES_URLS)

    assert passed.upstream_url() == "http://10.0.0.1/cat.png"
    assert caught.value.param == "messages[0].content[1].image_url"


@pytest.mark.parametrize("url", ["http://[::1/cat.png", "http://[oops]/cat.png"])
async def test_a_malformed_url_is_a_client_error(fetchers: Fetchers, url: str) -> None:
    with pytest.raises(ImageError) as caught:
        await make_pipeline(fetchers.make()).prepare(request_with([part(url)]), TAKES_URLS)

    assert caught.value.param == "messages[0].content[1].image_url"


async def test_a_forbidden_address_is_refused_when_fetched(
    fetchers: Fetchers, connections: list[str]
) -> None:
    request = request_with([part(PNG_URI), part("http://[::ffff:10.0.0.1]/cat.png?sig=SECRET")])

    with pytest.raises(ImageURLForbidden) as caught:
        await make_pipeline(fetchers.make()).prepare(request, INLINE_ONLY)

    assert caught.value.param == "messages[0].content[2].image_url"
    assert "SECRET" not in caught.value.message
    assert connections == []


@pytest.mark.parametrize(
    ("needs", "limits"),
    [
        (ImageNeeds(max_images=3), {}),
        (ImageNeeds(), {"max_images_per_request": 3}),
        (ImageNeeds(max_images=5), {"max_images_per_request": 3}),
    ],
)
async def test_too_many_images_names_the_first_one_past_the_limit(
    fetchers: Fetchers, needs: ImageNeeds, limits: dict[str, Any]
) -> None:
    request = request_with([part(PNG_URI), part(PNG_URI)], [part(PNG_URI), part(PNG_URI)])

    with pytest.raises(TooManyImages) as caught:
        await make_pipeline(fetchers.make(), **limits).prepare(request, needs)

    assert caught.value.param == "messages[1].content[2].image_url"


async def test_the_upstream_byte_limit_applies_to_data_uris(fetchers: Fetchers) -> None:
    request = request_with([part(PNG_URI)])

    with pytest.raises(ImageTooLarge) as caught:
        await make_pipeline(fetchers.make()).prepare(request, ImageNeeds(max_bytes=len(PNG) - 1))
    (fits,) = await make_pipeline(fetchers.make()).prepare(request, ImageNeeds(max_bytes=len(PNG)))

    assert caught.value.param == "messages[0].content[1].image_url"
    assert fits.image is not None


async def test_the_upstream_byte_limit_applies_to_fetched_images(
    fetchers: Fetchers, server: LocalServer
) -> None:
    request = request_with([part(serve(server))])
    needs = ImageNeeds(urls=False, max_bytes=len(PNG) - 1)

    with pytest.raises(ImageTooLarge) as caught:
        await make_pipeline(fetchers.make(allow_private=True)).prepare(request, needs)

    assert caught.value.param == "messages[0].content[1].image_url"


async def test_with_images_rewrites_only_replaced_parts(
    fetchers: Fetchers, server: LocalServer
) -> None:
    request = request_with([part(PNG_URI), part(BMP_URI)], [part(serve(server))])
    before = request.model_dump()

    prepared = await make_pipeline(fetchers.make(allow_private=True)).prepare(request, INLINE_ONLY)
    upstream = with_images(request, prepared)
    rewritten, _ = upstream

    assert [image.replaced for image in prepared] == [False, True, True]
    assert url_of(rewritten, 0, 1) is url_of(request, 0, 1)
    assert sent_url_of(upstream, 0, 2).startswith("data:image/png;base64,")
    assert open_image(base64.b64decode(sent_url_of(upstream, 0, 2).split(",")[1])).format == "PNG"
    assert sent_url_of(upstream, 1, 1) == PNG_URI
    content = rewritten.messages[0].content
    assert isinstance(content, list)
    assert isinstance(content[0], TextPart)
    assert request.model_dump() == before


async def test_an_image_declared_as_another_type_goes_on_as_its_real_type(
    fetchers: Fetchers,
) -> None:
    request = request_with([part(data_uri(PNG, "image/jpeg"))])

    (prepared,) = await make_pipeline(fetchers.make()).prepare(request, INLINE_ONLY)

    assert prepared.image is not None
    assert prepared.image.mime == "image/png"
    assert prepared.upstream_url().startswith("data:image/png;base64,")


async def test_data_uri_schemes_are_case_insensitive(fetchers: Fetchers) -> None:
    request = request_with([part(PNG_URI.replace("data:", "DATA:", 1))])

    (prepared,) = await make_pipeline(fetchers.make()).prepare(request, INLINE_ONLY)

    assert prepared.image is not None


async def test_low_detail_parts_are_sent_at_most_512(fetchers: Fetchers) -> None:
    big = data_uri(picture((1024, 768)))
    request = request_with([part(big, detail="low"), part(big, detail="high")])

    low, high = await make_pipeline(fetchers.make()).prepare(request, INLINE_ONLY)

    assert low.image is not None
    assert high.image is not None
    assert (low.image.width, low.image.height) == (512, 384)
    assert (high.image.width, high.image.height) == (1024, 768)
    assert (low.replaced, high.replaced) == (True, False)
