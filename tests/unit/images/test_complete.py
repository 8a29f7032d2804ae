"""Whole or cut short: each format's end, found in one piece or across many."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from app.errors import ImageError
from app.images.complete import MAX_GIF_BLOCKS, ImageEnd, check_whole

FORMATS = ["JPEG", "PNG", "GIF", "WEBP"]


def encoded(kind: str, **options: object) -> bytes:
    image = Image.effect_noise((40, 30), 64).convert("RGB")
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def whole_in_pieces(data: bytes, size: int) -> bool:
    end = ImageEnd()
    for at in range(0, len(data), size):
        end.feed(data[at : at + size])
    return end.whole()


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("piece", [1, 7, 1 << 20])
def test_a_whole_image_is_whole_however_it_is_cut_into_pieces(kind: str, piece: int) -> None:
    assert whole_in_pieces(encoded(kind), piece)


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9, -1])
def test_an_image_cut_short_is_not(kind: str, keep: float) -> None:
    data = encoded(kind)
    cut = data[:-1] if keep < 0 else data[: int(len(data) * keep)]
    assert not whole_in_pieces(cut, 7)
    with pytest.raises(ImageError, match="truncated"):
        check_whole(cut)


def test_a_jpeg_whose_thumbnail_ends_but_whose_own_scan_does_not_is_cut_short() -> None:
    thumbnail = encoded("JPEG")
    exif = Image.Exif()
    data = encoded("JPEG", exif=exif.tobytes())
    app1 = b"\xff\xe1" + (len(thumbnail) + 2).to_bytes(2, "big") + thumbnail
    with_thumbnail = data[:2] + app1 + data[2:]
    assert whole_in_pieces(with_thumbnail, 5)
    assert not whole_in_pieces(with_thumbnail[: len(data) // 2 + len(app1)], 5)


def test_bytes_after_a_jpeg_end_marker_are_allowed() -> None:
    assert whole_in_pieces(encoded("JPEG") + b"trailer written by a camera", 3)


def test_formats_it_does_not_know_pass() -> None:
    assert whole_in_pieces(b"BM" + b"\x00" * 100, 10)


@pytest.mark.parametrize("kind", ["JPEG", "PNG"])
def test_an_end_marker_split_between_pieces_past_the_header_is_found(kind: str) -> None:
    out = io.BytesIO()
    Image.frombytes("RGB", (400, 300), random.randbytes(400 * 300 * 3)).save(out, kind, quality=100)
    data = out.getvalue()
    assert len(data) > 2 * 64 * 1024  # so that the end comes in a piece after the header's
    for split in range(len(data) - 14, len(data)):
        end = ImageEnd()
        for piece in (data[:70_000], data[70_000:split], data[split:]):
            end.feed(piece)
        assert end.whole(), split
        cut = ImageEnd()
        for piece in (data[:70_000], data[70_000:split], data[split:-1]):
            cut.feed(piece)
        assert not cut.whole(), split


def test_a_png_is_whole_by_its_chunks_not_by_bytes_that_look_like_its_end() -> None:
    data = encoded("PNG")
    assert whole_in_pieces(data + b"appended after the end", 5)
    # Cut before its end, with the end's bytes inside the last chunk it has: still cut short.
    fake_end = data[:-12] + b"IEND\xaeB`\x82"
    idat = fake_end.rfind(b"IDAT") - 4
    length = int.from_bytes(fake_end[idat : idat + 4], "big")
    assert not whole_in_pieces(
        fake_end[:idat] + (length + 40).to_bytes(4, "big") + fake_end[idat + 4 :], 5
    )
    corrupt = data[:8] + b"\xff\xff\xff\xff" + data[12:]
    assert not whole_in_pieces(corrupt, 5)


def animated_gif(frames: int = 3) -> bytes:
    images = [Image.effect_noise((40, 30), 32 * (i + 1)).convert("P") for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=50, loop=0)
    return out.getvalue()


@pytest.mark.parametrize("piece", [1, 5, 255, 1 << 20])
def test_a_gif_is_whole_by_its_blocks_with_bytes_after_its_trailer_allowed(piece: int) -> None:
    data = animated_gif()
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3  # and their extensions
    assert whole_in_pieces(data, piece)
    assert whole_in_pieces(data + b"\x00padding written after the trailer", piece)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_a_gif_cut_short_is_not_whole_even_when_it_ends_like_one(keep: float) -> None:
    data = animated_gif()
    cut = data[: int(len(data) * keep)] + b"\x00;"  # a block terminator and a trailer
    assert not whole_in_pieces(cut, 7)
    with pytest.raises(ImageError, match="truncated"):
        check_whole(cut)


def test_a_gif_with_a_block_that_is_no_gif_block_is_not_whole() -> None:
    data = animated_gif(1)
    trailer = len(data) - 1
    assert not whole_in_pieces(data[:trailer] + b"\x99" + data[trailer:], 3)


def test_a_gif_cut_into_more_blocks_than_any_encoder_makes_is_refused_early() -> None:
    from tests.hostile.bombs import fragmented_gif

    check_whole(fragmented_gif(100_000))  # 50,000 blocks: odd, and whole
    with pytest.raises(ImageError, match="blocks"):
        check_whole(fragmented_gif(2 * MAX_GIF_BLOCKS + 1_000))
