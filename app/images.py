"""Image parts: checking their URLs and counting them, and reading data-URI images off the loop."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio.to_thread
from PIL import Image

from app.config import ImagesConfig
from app.errors import ImageError, ImageTooLarge, ImageURLForbidden, TooManyImages
from app.schemas import ChatCompletionRequest

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp",
                    "BMP": "image/bmp", "TIFF": "image/tiff"}
MIN_SIDE = 2


@dataclass(frozen=True)
class ImageInfo:
    """What the gateway learned of one image from its bytes."""

    mime: str
    width: int
    height: int
    size: int
    sha256: str


def public_url(url: str) -> str:
    """A URL fit to show: scheme, host and path, never the query string or credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def check_image_parts(request: ChatCompletionRequest, limits: ImagesConfig,
                      max_images: int | None = None) -> None:
    """Refuse too many images and URLs that are neither http(s) nor a data URI."""
    allowed = limits.max_images_per_request
    if max_images is not None:
        allowed = min(allowed, max_images)
    for index, (param, part) in enumerate(request.image_parts()):
        if index >= allowed:
            raise TooManyImages(
                f"this request has more than {allowed} images; at most {allowed} are allowed",
                param=param,
            )
        scheme = part.image_url.url.split(":", 1)[0].lower()
        if scheme not in ("http", "https", "data"):
            raise ImageURLForbidden(
                f"image URLs must be http(s) or a data URI, not {scheme!r}", param=param
            )


def decode_data_uri(url: str, param: str, limits: ImagesConfig) -> bytes:
    """The bytes of a `data:image/...;base64,` URI; the declared type must be an image."""
    header, comma, payload = url.partition(",")
    if not comma or not header.lower().startswith("data:"):
        raise ImageError("the data URI is malformed", param=param)
    media = header[5:].split(";")
    if not media[0].lower().startswith("image/"):
        raise ImageError(f"the data URI declares {media[0] or 'no type'!r}, not an image",
                         param=param)
    if "base64" not in (p.strip().lower() for p in media[1:]):
        raise ImageError("image data URIs must be base64-encoded", param=param)
    if len(payload) * 3 // 4 > limits.max_image_bytes + 3:
        raise ImageTooLarge(f"the image is over {limits.max_image_bytes} bytes", param=param)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("the data URI is not valid base64", param=param) from None
    if len(data) > limits.max_image_bytes:
        raise ImageTooLarge(f"the image is over {limits.max_image_bytes} bytes", param=param)
    return data


def _read_header(data: bytes, param: str, limits: ImagesConfig) -> ImageInfo:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                image_format, (width, height) = image.format, image.size
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ImageTooLarge("the image has too many pixels", param=param) from None
        except Exception:
            raise ImageError("the bytes are not a readable image", param=param) from None
    mime = ACCEPTED_FORMATS.get(image_format or "")
    if mime is None:
        raise ImageError(f"unsupported image format {image_format!r}", param=param)
    if width * height > limits.max_image_pixels:
        raise ImageTooLarge(
            f"the image has {width * height} pixels; at most {limits.max_image_pixels}",
            param=param,
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageError(f"the image is {width}×{height}; each side needs at least "
                         f"{MIN_SIDE} pixels", param=param)
    return ImageInfo(mime, width, height, len(data), hashlib.sha256(data).hexdigest())


async def inspect_data_uri(url: str, param: str, limits: ImagesConfig) -> ImageInfo:
    """Decode and identify a data-URI image in a worker thread, never on the event loop."""

    def work() -> ImageInfo:
        return _read_header(decode_data_uri(url, param, limits), param, limits)

    return await anyio.to_thread.run_sync(work)
