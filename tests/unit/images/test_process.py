"""Reading image bytes with Pillow: the real type from the bytes, limits, bombs, conversions."""

from __future__ import annotations

import hashlib
import time

import pytest
from PIL import Image

from app.errors import ImageError, ImageTooLarge
from app.images.process import WEB_FORMATS, Target, process_image
from tests.unit.images.samples import (
    animated_gif,
    encode,
    open_image,
    picture,
    png_bomb,
    two_colour_jpeg,
)

MAX_PIXELS = 50_000_000
NO_GIF = Target(frozenset({"image/png", "image/jpeg"}))


@pytest.mark.parametrize(
    ("image_format", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_web_formats_pass_as_they_are(image_format: str, mime: str) -> None:
    data = picture((40, 30), image_format)

    image = process_image(data, Target(), max_pixels=MAX_PIXELS)

    assert (image.mime, image.width, image.height) == (mime, 40, 30)
    assert image.data is data
    assert image.conversions == ()
    assert image.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("image_format", "mime"), [("BMP", "image/bmp"), ("TIFF", "image/tiff")])
def test_bmp_and_tiff_become_png(image_format: str, mime: str) -> None:
    data = picture((40, 30), image_format, colour=(10, 200, 30))

    image = process_image(data, Target(WEB_FORMATS), max_pixels=MAX_PIXELS)

    assert image.mime == "image/png"
    assert image.conversions == (f"{mime} → image/png",)
    decoded = open_image(image.data)
    assert (decoded.format, decoded.size) == ("PNG", (40, 30))
    assert decoded.convert("RGB").getpixel((5, 5)) == (10, 200, 30)
    assert image.sha256 == hashlib.sha256(data).hexdigest()


def test_the_output_format_is_one_the_target_reads() -> None:
    data = picture((40, 30), "PNG", mode="RGBA", colour=(0, 0, 255, 128))

    image = process_image(data, Target(frozenset({"image/jpeg"})), max_pixels=MAX_PIXELS)

    assert image.mime == "image/jpeg"
    assert open_image(image.data).format == "JPEG"


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"GIF89a", b"\xff\xd8\xff"],
)
def test_undecodable_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(ImageError) as caught:
        process_image(data, Target(), max_pixels=MAX_PIXELS)

    assert type(caught.value) is ImageError


def test_a_truncated_image_that_needs_converting_is_refused() -> None:
    data = picture((200, 200), "BMP")[:5000]

    with pytest.raises(ImageError, match="truncated or corrupt"):
        process_image(data, Target(), max_pixels=MAX_PIXELS)


@pytest.mark.parametrize("size", [(1, 100), (100, 1), (1, 1)])
def test_sizes_under_the_targets_smallest_side_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(ImageError) as caught:
        process_image(picture(size), Target(min_side=2), max_pixels=MAX_PIXELS)

    assert type(caught.value) is ImageError


@pytest.mark.parametrize("size", [(1, 100), (100, 1), (1, 1)])
def test_thin_images_pass_a_target_with_no_smallest_side(size: tuple[int, int]) -> None:
    assert (process_image(picture(size), Target(), max_pixels=MAX_PIXELS).width) == size[0]


def test_images_over_the_pixel_limit_are_too_large() -> None:
    with pytest.raises(ImageTooLarge):
        process_image(picture((100, 100)), Target(), max_pixels=9_999)

    assert process_image(picture((100, 100)), Target(), max_pixels=10_000).width == 100


@pytest.mark.parametrize(
    ("size", "max_pixels"),
    [((30_000, 30_000), MAX_PIXELS), ((10_000, 10_000), 200_000_000), ((4_000, 4_000), 1_000_000)],
)
def test_decompression_bombs_are_refused_without_decoding(
    size: tuple[int, int], max_pixels: int
) -> None:
    bomb = png_bomb(*size)
    started = time.perf_counter()

    with pytest.raises(ImageTooLarge):
        process_image(bomb, Target(max_side=512, low_detail=True), max_pixels=max_pixels)

    assert len(bomb) < 200_000
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [((400, 300), 200, (200, 150)), ((300, 400), 200, (150, 200)), ((400, 300), 400, (400, 300))],
)
def test_images_are_resized_to_the_largest_side(
    size: tuple[int, int], max_side: int, expected: tuple[int, int]
) -> None:
    image = process_image(picture(size), Target(max_side=max_side), max_pixels=MAX_PIXELS)

    assert (image.width, image.height) == expected
    assert open_image(image.data).size == expected
    assert image.converted == (size != expected)


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((2000, 1000), None, (512, 256)),
        ((600, 1200), None, (256, 512)),
        ((2000, 1000), 300, (300, 150)),
        ((500, 400), None, (500, 400)),
    ],
)
def test_low_detail_sends_at_most_512_keeping_the_aspect_ratio(
    size: tuple[int, int], max_side: int | None, expected: tuple[int, int]
) -> None:
    target = Target(max_side=max_side, low_detail=True)

    image = process_image(picture(size, "JPEG"), target, max_pixels=MAX_PIXELS)

    assert (image.width, image.height) == expected
    assert open_image(image.data).size == expected
    assert image.mime == "image/jpeg"


def test_an_animated_gif_becomes_its_first_frame_where_gif_is_not_taken() -> None:
    image = process_image(animated_gif(), NO_GIF, max_pixels=MAX_PIXELS)

    assert image.mime == "image/png"
    assert image.conversions == ("image/gif (first frame) → image/png",)
    frame = open_image(image.data)
    assert frame.format == "PNG"
    assert not getattr(frame, "is_animated", False)
    assert frame.convert("RGB").getpixel((5, 5)) == (255, 0, 0)


def test_an_animated_gif_passes_where_gif_is_taken() -> None:
    data = animated_gif()

    image = process_image(data, Target(), max_pixels=MAX_PIXELS)

    assert image.data is data
    assert image.mime == "image/gif"


def test_exif_orientation_is_applied_when_resizing() -> None:
    data = two_colour_jpeg((400, 200), orientation=6)  # stored landscape, shown portrait

    image = process_image(data, Target(max_side=100), max_pixels=MAX_PIXELS)

    assert (image.width, image.height) == (50, 100)
    assert "EXIF orientation applied" in image.conversions
    assert "resized to fit 100×100" in image.conversions
    shown = open_image(image.data).convert("RGB")
    assert shown.size == (50, 100)
    assert shown.getpixel((25, 10)) == pytest.approx((255, 0, 0), abs=40)  # stored left: top
    assert shown.getpixel((25, 90)) == pytest.approx((0, 0, 255), abs=40)
    assert open_image(image.data).getexif().get(0x0112, 1) == 1


def test_an_upright_jpeg_records_no_orientation_change() -> None:
    image = process_image(two_colour_jpeg((400, 200)), Target(max_side=100), max_pixels=MAX_PIXELS)

    assert (image.width, image.height) == (100, 50)
    assert image.conversions == ("resized to fit 100×100",)


@pytest.mark.parametrize(
    ("mode", "image_format", "size", "target"),
    [
        ("I;16", "PNG", (2400, 1600), Target(low_detail=True)),
        ("I;16", "PNG", (1200, 800), Target(max_side=256)),
        ("I", "TIFF", (600, 400), Target()),
        ("F", "TIFF", (600, 400), Target()),
        ("CMYK", "JPEG", (1200, 800), Target(max_side=256)),
        ("CMYK", "TIFF", (600, 400), Target()),
        ("LA", "PNG", (1200, 800), Target(max_side=256)),
        ("P", "PNG", (600, 400), Target(frozenset({"image/jpeg"}))),
        ("1", "BMP", (600, 400), Target()),
    ],
)
def test_valid_images_of_any_mode_are_converted(
    mode: str, image_format: str, size: tuple[int, int], target: Target
) -> None:
    data = encode(Image.new(mode, size), image_format)

    image = process_image(data, target, max_pixels=MAX_PIXELS)

    assert image.mime in target.formats
    expected = Image.new("1", size)
    expected.thumbnail((target.side_limit or max(size),) * 2)
    assert open_image(image.data).size == expected.size
