"""The first look at image parts: how many, which schemes, and data-URI decoding."""

from __future__ import annotations

import binascii

import pybase64

from app.config import ImagesConfig
from app.errors import ImageError, ImageTooLarge, ImageURLForbidden, TooManyImages
from app.schemas import ChatCompletionRequest


def check_image_parts(
    request: ChatCompletionRequest, limits: ImagesConfig, max_images: int | None = None
) -> None:
    """Refuse too many images, and URLs that are neither http(s) nor a data URI."""
    allowed = limits.max_images_per_request
    if max_images is not None:
        allowed = min(allowed, max_images)
    for index, (param, part) in enumerate(request.image_parts()):
        if index >= allowed:
            raise TooManyImages(
                f"this request has more than {allowed} image(s); this model takes at most "
                f"{allowed}",
                param=param,
            )
        url = part.image_url.url
        scheme = url[: url.find(":", 0, 16)].lower() if ":" in url[:16] else ""
        if scheme not in ("http", "https", "data"):
            raise ImageURLForbidden(
                f"image URLs must be http(s) or a data URI, not {scheme!r}", param=param
            )


def decode_data_uri(url: str, param: str | None, max_bytes: int) -> bytes:
    """The bytes of a `data:image/...;base64,` URI; the declared type must be an image."""
    comma = url.find(",")
    if comma < 0 or url[:5].lower() != "data:":
        raise ImageError("the data URI is malformed", param=param)
    media = url[5:comma].split(";")
    if not media[0].strip().lower().startswith("image/"):
        raise ImageError(
            f"the data URI declares {media[0] or 'no type'!r}, not an image", param=param
        )
    if "base64" not in (p.strip().lower() for p in media[1:]):
        raise ImageError("image data URIs must be base64-encoded", param=param)
    if (len(url) - comma - 1) * 3 // 4 > max_bytes + 3:
        raise ImageTooLarge(f"the image is over {max_bytes} bytes", param=param)
    try:
        # One copy of a multi-MB URI as bytes, decoded in place: no sliced string between.
        payload = memoryview(url.encode("ascii"))[comma + 1 :]
        data = pybase64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("the data URI is not valid base64", param=param) from None
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the image is over {max_bytes} bytes", param=param)
    if not data:
        raise ImageError("the data URI is empty", param=param)
    return data
