"""What converting an image will cost, read from its header before anything is decoded: the
memory its decoded pixels and their copies take, and the scans a progressive JPEG makes its
decoder run over all of them."""

from __future__ import annotations

from PIL import Image

# Bytes Pillow keeps per pixel of each mode: 1 for bilevel, grey and palette images, 2 for
# 16-bit grey, 4 for everything else (RGB too: its pixels are 32 bits wide).
_ONE_BYTE = frozenset({"1", "L", "P"})
# Pillow decodes a WEBP through libwebp's animation decoder, which keeps two canvases and
# hands over a copy: about 16 bytes a pixel of an RGB image (7071² lossless: 784 MB).
_WEBP_FACTOR = 4
# Modes shown as they are; any other is converted to RGBA first.
_SHOWN_AS_THEY_ARE = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})
_START_OF_SCAN = b"\xff\xda"


def bytes_per_pixel(mode: str) -> int:
    if mode in _ONE_BYTE:
        return 1
    return 2 if mode.startswith("I;16") else 4


def decode_bytes(
    image: Image.Image, full_size: tuple[int, int], *, resized: bool, rotated: bool
) -> int:
    """The memory converting `image` takes at its peak: its decoded frame (at the size a JPEG
    draft decodes it to), the decoder's own buffers, and the copies the conversion makes of
    the whole frame (one `resized` to a side limit makes its copies small)."""
    width, height = image.size
    pixels = width * height
    frame = pixels * bytes_per_pixel(image.mode)
    cost = frame * _WEBP_FACTOR if image.format == "WEBP" else frame
    if image.mode.startswith("I;16"):
        cost += pixels * 3  # scaled to 8 bits (a 16-bit copy, then the 8-bit one)
    if image.format == "JPEG" and image.info.get("progressive"):
        cost += _coefficient_bytes(image, full_size)
    if not resized:  # the copies a conversion makes are as large as the frame
        if image.mode not in _SHOWN_AS_THEY_ARE and not image.mode.startswith("I;16"):
            cost += pixels * 4
        if rotated:
            cost += frame
        cost += pixels * 4  # the encoded image, at worst
    return cost


def _coefficient_bytes(image: Image.Image, full_size: tuple[int, int]) -> int:
    """A progressive JPEG's coefficients, kept whole at full size until its last scan: two
    bytes each, for every component at its own sampling (a 4:2:0 image has half as many as
    its pixels' three channels)."""
    full_width, full_height = full_size
    layers = getattr(image, "layer", None) or [(0, 1, 1, 0)] * len(image.getbands())
    widest = max(h for _, h, _, _ in layers)
    tallest = max(v for _, _, v, _ in layers)
    share = sum(h * v for _, h, v, _ in layers) / (widest * tallest)
    return int(full_width * full_height * share * 2)


def jpeg_scans(data: bytes) -> int:
    """How many scans a JPEG holds, at most: its start-of-scan markers (an embedded thumbnail's
    counted too). Entropy-coded data never holds one (a 0xFF there is followed by 0x00)."""
    return data.count(_START_OF_SCAN)
