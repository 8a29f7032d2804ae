"""The first look at image parts: how many, which schemes, and data-URI decoding."""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Callable
from typing import TypeVar

import pybase64

from app.config import ImagesConfig
from app.errors import (
    ImageError,
    ImageTooLarge,
    ImageURLForbidden,
    InvalidJSON,
    InvalidRequest,
    TooManyImages,
)
from app.errors.quoting import shortened
from app.wire.inline import InlineURI
from app.wire.schemas import ChatCompletionRequest

T = TypeVar("T")
HEAD_BYTES = 256 * 1024  # enough for Pillow to identify an image and read its size
# Base64 characters decoded at a time: a multiple of 4, so each window decodes on its own,
# and small enough to be reused from the heap rather than mapped afresh.
WINDOW_CHARS = 512 * 1024


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
                f"image URLs must be http(s) or a data URI, not {shortened(scheme)!r}", param=param
            )


def payload_start(
    url: str, param: str | None, max_bytes: int, payload_chars: int | None = None
) -> int:
    """Where the base64 payload of a `data:image/...;base64,` URI starts, once its header
    checks out: the declared type must be an image, and the payload small enough.
    `payload_chars` is the payload's length when `url` is the header alone."""
    comma = url.find(",")
    if comma < 0 or url[:5].lower() != "data:":
        raise ImageError("the data URI is malformed", param=param)
    media = url[5:comma].split(";")
    if not media[0].strip().lower().startswith("image/"):
        raise ImageError(
            f"the data URI declares {shortened(media[0]) or 'no type'!r}, not an image", param=param
        )
    if "base64" not in (p.strip().lower() for p in media[1:]):
        raise ImageError("image data URIs must be base64-encoded", param=param)
    chars = len(url) - comma - 1 if payload_chars is None else payload_chars
    if chars * 3 // 4 > max_bytes + 3:
        raise ImageTooLarge(f"the image is over {max_bytes} bytes", param=param)
    return comma + 1


def decoded_size(url: str, start: int) -> int:
    """How many bytes the strict base64 payload of `url` from `start` decodes to, without
    decoding it (a URI whose payload has decoded before: its length is a multiple of 4)."""
    padding = 2 if url.endswith("==") else 1 if url.endswith("=") else 0
    return (len(url) - start) // 4 * 3 - padding


def _payload(
    url: str | InlineURI, param: str | None, max_bytes: int
) -> tuple[memoryview | str, int]:
    """Where the base64 payload of a data URI whose header checks out is: in the request body
    for a URI left there, else in `url` from the offset returned."""
    if isinstance(url, InlineURI):
        payload_start(url.header, param, max_bytes, len(url.payload))
        return url.payload, 0
    return url, payload_start(url, param, max_bytes)


def decode_data_uri(url: str | InlineURI, param: str | None, max_bytes: int) -> bytes:
    """The bytes of a `data:image/...;base64,` URI; the declared type must be an image."""
    payload, start = _payload(url, param, max_bytes)
    if isinstance(payload, str):  # one copy of the URI as bytes, decoded in place
        payload = memoryview(payload.encode("ascii", "replace"))[start:]
    try:
        data = pybase64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _not_base64(url, param) from None
    return _checked(data, len(data), param, max_bytes)


def scan_data_uri(
    url: str | InlineURI,
    param: str | None,
    max_bytes: int,
    probe: Callable[[bytes], T | None],
    each_piece: Callable[[bytes], None] = lambda _: None,
) -> tuple[T, int, str] | None:
    """Read a data URI's image a window at a time, as strictly as `decode_data_uri`, without
    ever holding it whole (an upstream that takes the URI as it is doesn't need its bytes).

    `probe` sees the first `HEAD_BYTES` as soon as they are decoded. What it returns comes
    back with the image's size and SHA-256; None stops the scan right there, and the caller
    decodes the whole image instead. `each_piece` sees every decoded window in turn."""
    payload, start = _payload(url, param, max_bytes)
    digest, size, found = hashlib.sha256(), 0, None
    try:
        for at in range(start, len(payload), WINDOW_CHARS):
            piece = pybase64.b64decode(payload[at : at + WINDOW_CHARS], validate=True)
            if at == start and (found := probe(piece[:HEAD_BYTES])) is None:
                return None
            digest.update(piece)
            each_piece(piece)
            size += len(piece)
    except (binascii.Error, ValueError):
        raise _not_base64(url, param) from None
    _checked(b"", size, param, max_bytes)
    assert found is not None  # the payload was not empty: the probe saw its first window
    return found, size, digest.hexdigest()


def _not_base64(url: str | InlineURI, param: str | None) -> InvalidRequest:
    """The error for a payload that is not base64; for one read from the request body, the
    error parsing that body would have given first, if it isn't a valid JSON string."""
    if isinstance(url, InlineURI) and not url.is_json_string():
        return InvalidJSON("the request body is not valid JSON")
    return ImageError("the data URI is not valid base64", param=param)


def _checked(data: bytes, size: int, param: str | None, max_bytes: int) -> bytes:
    if size > max_bytes:
        raise ImageTooLarge(f"the image is over {max_bytes} bytes", param=param)
    if not size:
        raise ImageError("the data URI is empty", param=param)
    return data
