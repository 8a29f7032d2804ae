"""Images small on the wire that cost a decoder dearly: many scans, many pixels, deep pixels,
GIF data cut into the smallest blocks."""

from __future__ import annotations

import functools
import io
import struct

from PIL import Image


@functools.cache
def progressive_jpeg(side: int, scans: int, *, subsampling: int = 0) -> bytes:
    """A flat progressive JPEG `side` pixels square, its last scan repeated until it has
    `scans` scans: each one is a pass of the decoder over every coefficient."""
    image = Image.new("RGB", (side, side), (120, 60, 30))
    out = io.BytesIO()
    image.save(out, "JPEG", progressive=True, quality=90, subsampling=subsampling)
    data = out.getvalue()
    last, end = data.rindex(b"\xff\xda"), data.rindex(b"\xff\xd9")
    made = data.count(b"\xff\xda")
    return data[:end] + data[last:end] * max(scans - made, 0) + data[end:]


@functools.cache
def lossless_webp(side: int) -> bytes:
    """A flat lossless WEBP `side` pixels square: about 2 KB for 7071² (50 megapixels)."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), (10, 200, 30)).save(out, "WEBP", lossless=True)
    return out.getvalue()


@functools.cache
def deep_png(side: int) -> bytes:
    """A flat 16-bit greyscale PNG `side` pixels square: 113 KB for 7071²."""
    out = io.BytesIO()
    Image.new("I;16", (side, side), 3000).save(out, "PNG")
    return out.getvalue()


@functools.cache
def flat_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@functools.cache
def fragmented_gif(size: int) -> bytes:
    """A 64x64 GIF of about `size` bytes whose image data comes in 1-byte sub-blocks: a
    well-formed file (it ends with its trailer) whose blocks number in the millions."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 64, 64, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, 64, 64, 0) + b"\x02"
    blocks = b"\x01\x00" * ((size - len(screen) - len(descriptor)) // 2)
    return screen + descriptor + blocks + b"\x00\x3b"
