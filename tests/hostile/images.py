"""Images whose bytes are not all there: cut short, or a bare header claiming a large image."""

from __future__ import annotations

import io

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
