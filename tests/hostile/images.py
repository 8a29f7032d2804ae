"""Images whose bytes are not all there: cut short, or a bare header claiming a large image."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


def encoded(kind: str, width: int = 64, height: int = 48) -> bytes:
    """A noisy image (so its data is more than a header) in format `kind`."""
    image = Image.effect_noise((width, height), 64).convert("RGB")
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()


def truncated(kind: str) -> bytes:
    """An image cut off at two thirds: its header, and so its size, still reads."""
    data = encoded(kind)
    return data[: len(data) * 2 // 3]


def bare_jpeg_header(width: int = 2000, height: int = 2000) -> bytes:
    """A JPEG's header up to and with its start-of-scan segment, and no scan data at all."""
    data = encoded("JPEG", width, height)
    sos = data.index(b"\xff\xda")
    length = int.from_bytes(data[sos + 2 : sos + 4], "big")
    return data[: sos + 2 + length]


def tiny_png(serial: int) -> bytes:
    """A 2x2 PNG told apart from every other by `serial`, made by hand: a hundred thousand of
    them take a second or two."""
    pixels = serial.to_bytes(12, "big")
    rows = b"\x00" + pixels[:6] + b"\x00" + pixels[6:]
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(rows)),
            _png_chunk(b"IEND", b""),
        ]
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
