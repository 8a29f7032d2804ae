"""Image parts: intake checks, data-URI decoding, identification by bytes, limits, conversion,
the pipeline that delivers each part as its upstream takes it, and URLs as shown to clients."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image

from app.config import ImagesConfig
from app.errors import ImageError, ImageTooLarge, ImageURLForbidden, TooManyImages
from app.images import ImageNeeds, ImagePipeline, with_images
from app.images.fetch import display_url
from app.images.intake import check_image_parts, decode_data_uri
from app.images.process import Target, process_image
from app.wire.schemas import ChatCompletionRequest, ImageURLPart

PARAM = "messages[0].content[1].image_url"
LIMITS = ImagesConfig()
MAX_PIXELS = 50_000_000


def image_bytes(image_format: str, size: tuple[int, int] = (4, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format=image_format)
    return buffer.getvalue()


def data_uri(data: bytes, declared: str = "image/png") -> str:
    return f"data:{declared};base64,{base64.b64encode(data).decode()}"


def image_uri(image_format: str, declared: str, size: tuple[int, int] = (4, 3)) -> str:
    return data_uri(image_bytes(image_format, size), declared)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a size its data does not have (a decompression bomb)."""
    data = image_bytes("PNG")
    chunk = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    header = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return data[:8] + header + data[33:]


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def conversation(*contents: list[dict[str, Any]]) -> ChatCompletionRequest:
    """User messages with these content parts."""
    messages = [{"role": "user", "content": content} for content in contents]
    return ChatCompletionRequest.model_validate({"model": "m", "messages": messages})


def request_with(*urls: str) -> ChatCompletionRequest:
    """One user message: a text part, then an image part per URL."""
    return conversation([{"type": "text", "text": "Compare"}, *(image_part(url) for url in urls)])


def test_data_uri_is_decoded() -> None:
    assert decode_data_uri(data_uri(b"\x89PNG bytes"), PARAM, 100) == b"\x89PNG bytes"


def test_declared_type_and_base64_marker_are_case_insensitive() -> None:
    url = data_uri(b"bytes", "IMAGE/JPEG").replace(";base64", ";charset=x; BASE64")

    assert decode_data_uri(url, PARAM, 100) == b"bytes"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        pytest.param("data:image/png;base64,iVBOR*w0K", "not valid base64", id="bad base64"),
        pytest.param("data:image/png;base64,iVBORw0", "not valid base64", id="bad padding"),
        pytest.param("data:image/png;base64,iVBO\nRw==", "not valid base64", id="newline"),
        pytest.param("data:text/plain;base64,aGVsbG8=", "'text/plain', not an image", id="text"),
        pytest.param("data:;base64,aGVsbG8=", "'no type', not an image", id="no type"),
        pytest.param("data:image/png,%89PNG", "must be base64-encoded", id="not base64"),
        pytest.param("data:image/png;base64", "malformed", id="no comma"),
        pytest.param("data:image/png;base64,", "empty", id="empty"),
    ],
)
def test_undecodable_data_uris_are_refused(url: str, words: str) -> None:
    with pytest.raises(ImageError, match=words) as caught:
        decode_data_uri(url, PARAM, 100)

    assert caught.value.code == "invalid_image"
    assert caught.value.param == PARAM


@pytest.mark.parametrize("size", [11, 100_000])
def test_oversize_data_uri_is_too_large(size: int) -> None:
    with pytest.raises(ImageTooLarge) as caught:
        decode_data_uri(data_uri(b"\0" * size), PARAM, 10)

    assert caught.value.code == "image_too_large"
    assert caught.value.param == PARAM


def test_data_uri_at_the_byte_limit_is_accepted() -> None:
    assert decode_data_uri(data_uri(b"\0" * 10), PARAM, 10) == b"\0" * 10


def test_allowed_schemes_pass() -> None:
    request = conversation(
        [
            {"type": "text", "text": "Compare"},
            image_part("https://x.test/a.png"),
            image_part("HTTP://x.test/b.png"),
            image_part(data_uri(b"png")),
        ]
    )

    check_image_parts(request, LIMITS)


@pytest.mark.parametrize(
    "url", ["ftp://x.test/a.png", "file:///etc/passwd", "javascript:alert(1)", "x.test/a.png"]
)
def test_other_schemes_are_forbidden(url: str) -> None:
    request = conversation([{"type": "text", "text": "Look"}, image_part(url)])

    with pytest.raises(ImageURLForbidden) as caught:
        check_image_parts(request, LIMITS)

    assert caught.value.code == "image_url_forbidden"
    assert caught.value.param == PARAM


def test_too_many_images_names_the_first_one_past_the_limit() -> None:
    request = conversation(
        [image_part("https://x.test/1.png"), {"type": "text", "text": "and"}],
        [image_part("https://x.test/2.png"), image_part("https://x.test/3.png")],
    )

    with pytest.raises(TooManyImages) as caught:
        check_image_parts(request, ImagesConfig(max_images_per_request=2))

    assert caught.value.param == "messages[1].content[1].image_url"
    assert caught.value.code == "too_many_images"
    assert caught.value.status_code == 400


def test_the_provider_limit_applies_when_lower() -> None:
    request = conversation([image_part("https://x.test/1.png"), image_part("https://x.test/2.png")])

    check_image_parts(request, LIMITS, max_images=2)
    with pytest.raises(TooManyImages) as caught:
        check_image_parts(request, LIMITS, max_images=1)

    assert caught.value.param == "messages[0].content[1].image_url"


def test_the_config_limit_applies_when_lower() -> None:
    request = conversation([image_part("https://x.test/1.png"), image_part("https://x.test/2.png")])

    with pytest.raises(TooManyImages):
        check_image_parts(request, ImagesConfig(max_images_per_request=1), max_images=5)


def test_zero_images_allowed_refuses_the_first() -> None:
    request = conversation([image_part("https://x.test/1.png")])

    with pytest.raises(TooManyImages) as caught:
        check_image_parts(request, ImagesConfig(max_images_per_request=0))

    assert caught.value.param == "messages[0].content[0].image_url"


def test_text_only_requests_pass() -> None:
    check_image_parts(conversation([{"type": "text", "text": "hi"}]), LIMITS, max_images=0)


@pytest.mark.parametrize(
    ("image_format", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_web_images_are_identified_by_their_bytes_and_passed_as_they_are(
    image_format: str, mime: str
) -> None:
    data = image_bytes(image_format, (5, 3))

    image = process_image(data, Target(), max_pixels=MAX_PIXELS)

    assert (image.mime, image.width, image.height) == (mime, 5, 3)
    assert image.data == data
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert not image.converted


@pytest.mark.parametrize("image_format", ["BMP", "TIFF"])
def test_formats_upstreams_do_not_read_become_png(image_format: str) -> None:
    image = process_image(image_bytes(image_format, (5, 3)), Target(), max_pixels=MAX_PIXELS)

    assert image.mime == "image/png"
    assert image.data.startswith(b"\x89PNG")
    assert size_of(image.data) == (5, 3)
    assert image.converted


def test_large_images_are_resized_to_the_upstream_side_limit() -> None:
    image = process_image(
        image_bytes("PNG", (400, 100)), Target(max_side=200), max_pixels=MAX_PIXELS
    )

    assert (image.width, image.height) == (200, 50)
    assert size_of(image.data) == (200, 50)
    assert image.converted


def test_low_detail_means_at_most_512_a_side() -> None:
    image = process_image(
        image_bytes("JPEG", (1024, 600)), Target(low_detail=True), max_pixels=MAX_PIXELS
    )

    assert max(image.width, image.height) == 512
    assert image.mime == "image/jpeg"


@pytest.mark.parametrize("size", [(1, 50), (50, 1), (1, 1)])
def test_images_under_a_models_smallest_side_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(ImageError, match="at least 2 pixels a side") as caught:
        process_image(image_bytes("PNG", size), Target(min_side=2), max_pixels=MAX_PIXELS)

    assert caught.value.code == "invalid_image"


def test_one_pixel_is_an_image_where_the_model_states_no_smallest_side() -> None:
    image = process_image(image_bytes("PNG", (1, 1)), Target(), max_pixels=MAX_PIXELS)

    assert (image.width, image.height) == (1, 1)
    assert not image.converted


def test_more_pixels_than_allowed_is_too_large() -> None:
    with pytest.raises(ImageTooLarge, match="400 pixels"):
        process_image(image_bytes("PNG", (20, 20)), Target(), max_pixels=399)


@pytest.mark.parametrize("side", [10_000, 100_000])
def test_decompression_bombs_are_too_large_without_being_decoded(side: int) -> None:
    with pytest.raises(ImageTooLarge):
        process_image(png_claiming(side, side), Target(), max_pixels=MAX_PIXELS)


def test_bytes_that_are_no_image_are_refused() -> None:
    with pytest.raises(ImageError, match="not a readable image") as caught:
        process_image(b"%PDF-1.7 definitely not a picture", Target(), max_pixels=MAX_PIXELS)

    assert caught.value.code == "invalid_image"


def test_images_in_other_formats_are_refused() -> None:
    with pytest.raises(ImageError, match="unsupported image format 'PPM'"):
        process_image(image_bytes("PPM"), Target(), max_pixels=MAX_PIXELS)


@pytest.mark.anyio
async def test_data_uri_is_identified_by_its_bytes_whatever_it_declares(
    image_pipeline: ImagePipeline,
) -> None:
    url = image_uri("JPEG", "image/png")

    [image] = await image_pipeline.prepare(request_with(url), ImageNeeds())

    assert image.param == "messages[0].content[1].image_url"
    assert image.source == "data_uri"
    assert image.image is not None
    assert (image.image.mime, image.image.width, image.image.height) == ("image/jpeg", 4, 3)
    # The same bytes go on, labelled with their real type.
    assert image.upstream_url() == url.replace("data:image/png", "data:image/jpeg", 1)


@pytest.mark.anyio
async def test_urls_go_on_unfetched_to_upstreams_that_fetch_them(
    image_pipeline: ImagePipeline,
) -> None:
    [image] = await image_pipeline.prepare(
        request_with("https://x.test/cat.png?sig=1"), ImageNeeds()
    )

    assert image.source == "url"
    assert image.image is None
    assert image.upstream_url() == "https://x.test/cat.png?sig=1"
    assert "sig=1" not in image.describe()


@pytest.mark.anyio
async def test_converted_images_replace_the_clients_part(image_pipeline: ImagePipeline) -> None:
    request = request_with("https://x.test/a.png", image_uri("BMP", "image/bmp"))

    images = await image_pipeline.prepare(request, ImageNeeds())
    upstream, inline = with_images(request, images)

    content = upstream.messages[0].content
    assert isinstance(content, list)
    url_part, bmp_part = content[1], content[2]
    assert isinstance(url_part, ImageURLPart)
    assert isinstance(bmp_part, ImageURLPart)
    assert url_part.image_url.url == "https://x.test/a.png"
    assert inline is not None
    sent = inline.get(bmp_part.image_url.url)  # a stand-in for what the body gets
    assert sent is not None
    assert sent.header == "data:image/png;base64,"
    original = request.messages[0].content
    assert isinstance(original, list)
    assert original[2] != bmp_part


@pytest.mark.anyio
async def test_an_image_under_the_models_smallest_side_names_its_part(
    image_pipeline: ImagePipeline,
) -> None:
    request = request_with("https://x.test/ok.png", image_uri("PNG", "image/png", (1, 9)))

    with pytest.raises(ImageError, match="1×9; this model needs at least 2") as caught:
        await image_pipeline.prepare(request, ImageNeeds(min_side=2))

    assert caught.value.param == "messages[0].content[2].image_url"
    assert caught.value.code == "invalid_image"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "error_class"),
    [
        ("data:text/plain;base64,aGk=", ImageError),
        ("data:image/png;base64,aGVsbG8gd29ybGQ=", ImageError),
        (image_uri("PNG", "image/png", (1001, 1000)), ImageTooLarge),
        ("ftp://x.test/a.png", ImageURLForbidden),
    ],
)
async def test_refusals_name_the_image_part(
    image_pipeline: ImagePipeline, url: str, error_class: type[ImageError]
) -> None:
    request = request_with("https://x.test/ok.png", url)

    with pytest.raises(error_class) as caught:
        await image_pipeline.prepare(request, ImageNeeds())

    assert caught.value.param == "messages[0].content[2].image_url"


@pytest.mark.anyio
async def test_provider_image_limit_names_the_first_image_past_it(
    image_pipeline: ImagePipeline,
) -> None:
    request = request_with("https://x.test/1.png", "https://x.test/2.png")

    with pytest.raises(TooManyImages) as caught:
        await image_pipeline.prepare(request, ImageNeeds(max_images=1))

    assert caught.value.param == "messages[0].content[2].image_url"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://x.test/a.png", "https://x.test/a.png"),
        ("https://x.test/a.png?X-Amz-Signature=s&e=1", "https://x.test/a.png"),
        ("https://user:pass@x.test:8443/a.png#frag", "https://x.test:8443/a.png"),
        ("http://X.Test/a.png", "http://x.test/a.png"),
        ("http://[2001:db8::1]:8080/a.png?token=t", "http://[2001:db8::1]:8080/a.png"),
    ],
)
def test_display_url_drops_query_strings_and_credentials(url: str, shown: str) -> None:
    assert display_url(url) == shown


@pytest.mark.parametrize("url", ["http://x.test:99999/a.png?t=1", "http://x.test:port/a.png?t=1"])
def test_display_url_survives_a_bad_port(url: str) -> None:
    shown = display_url(url)

    assert "x.test" in shown
    assert "t=1" not in shown
