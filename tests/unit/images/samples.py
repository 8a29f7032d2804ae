"""Image bytes for the image tests, made with Pillow or, for bombs, written chunk by chunk."""

from __future__ import annotations

import base64
import functools
import io
import struct
import zlib
from typing import Any

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ORIENTATION = 0x0112


def encode(image: Image.Image, image_format: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, image_format, **params)
    return out.getvalue()


def picture(
    size: tuple[int, int] = (40, 30),
    image_format: str = "PNG",
    mode: str = "RGB",
    colour: Any = "red",
) -> bytes:
    """One solid-colour image in `image_format`."""
    return encode(Image.new(mode, size, colour), image_format)


def two_colour_jpeg(size: tuple[int, int], orientation: int | None = None) -> bytes:
    """Left half red, right half blue as stored, with an optional EXIF Orientation tag."""
    width, height = size
    image = Image.new("RGB", size, "red")
    image.paste(Image.new("RGB", (width // 2, height), "blue"), (width // 2, 0))
    params: dict[str, Any] = {"quality": 95}
    if orientation is not None:
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        params["exif"] = exif.tobytes()
    return encode(image, "JPEG", **params)


def animated_gif(size: tuple[int, int] = (20, 10)) -> bytes:
    """Three frames: red, then green, then blue."""
    frames = [Image.new("RGB", size, colour) for colour in ("red", "lime", "blue")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.cache
def png_bomb(width: int, height: int) -> bytes:
    """A valid one-bit black PNG of `width` by `height`: small on the wire, huge once decoded."""
    row = bytes(1 + (width + 7) // 8)  # filter byte, then the packed pixels
    compressor = zlib.compressobj(9)
    block_rows = 1000
    blocks, rest = divmod(height, block_rows)
    block = row * block_rows
    idat = b"".join(compressor.compress(block) for _ in range(blocks))
    idat += compressor.compress(row * rest) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
