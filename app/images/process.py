"""Reading and converting image bytes with Pillow. Blocking: run it in a worker thread."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import struct
import threading
import warnings
from dataclasses import dataclass
from typing import cast

from PIL import Image

from app.errors import ImageError, ImageTooLarge
from app.images.complete import check_whole
from app.images.costs import decode_bytes, jpeg_scans
from app.images.metadata import strip_metadata

METADATA_REMOVED = "location and identity metadata removed"
MIB = 1024 * 1024
# Scans of a progressive JPEG decoded at most: encoders make 10 or so, and each is a pass of
# the decoder over every coefficient (a 50-megapixel one: 20 ms of CPU a scan).
DEFAULT_MAX_JPEG_SCANS = 100
_ORIENTATION = 0x0112  # the EXIF tag
# How to turn an image upright, by its EXIF orientation.
_TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
LOW_DETAIL_SIDE = 512
MIME_BY_FORMAT = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
WEB_FORMATS = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


@dataclass(frozen=True)
class Target:
    """What one upstream can read: formats, largest and smallest side, animation; and the
    part's detail."""

    formats: frozenset[str] = WEB_FORMATS
    max_side: int | None = None
    low_detail: bool = False
    min_side: int = 1  # an upstream that reads nothing smaller says so

    @property
    def side_limit(self) -> int | None:
        limits = [s for s in (self.max_side, LOW_DETAIL_SIDE if self.low_detail else None) if s]
        return min(limits) if limits else None


@dataclass(frozen=True)
class ProcessedImage:
    """Bytes ready for an upstream, what they are, and what was done to get them."""

    data: bytes  # empty once no upstream needs the bytes any more (see `size`)
    mime: str
    width: int
    height: int
    sha256: str  # of the client's original bytes
    conversions: tuple[str, ...] = ()
    size: int = -1  # bytes going upstream; defaults to len(data)

    def __post_init__(self) -> None:
        if self.size < 0:
            object.__setattr__(self, "size", len(self.data))

    def without_data(self) -> ProcessedImage:
        return dataclasses.replace(self, data=b"", size=self.size)

    @property
    def converted(self) -> bool:
        return bool(self.conversions)


@dataclass(frozen=True)
class Identity:
    """What an image is, read from its first bytes."""

    mime: str
    width: int
    height: int


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Stopped(Exception):
    """A conversion stopped half-way: whoever asked for it has gone."""


class _Reader(io.BytesIO):
    """An image's bytes as Pillow's decoders read them, a block at a time: once `stop` is
    set, the next read ends the decoding there."""

    stop: threading.Event | None = None

    def read(self, size: int | None = -1, /) -> bytes:
        if self.stop is not None and self.stop.is_set():
            raise Stopped
        return super().read(size)


@dataclass
class Pending:
    """An image opened from its header that needs converting, its pixels not decoded yet, and
    the memory decoding them will take at its peak (`cost`)."""

    image: Image.Image
    reader: _Reader
    data: bytes
    mime: str
    sha256: str
    target: Target
    plan: list[str]
    cost: int


@dataclass(frozen=True)
class Limits:
    """What the decoding of one image may cost (from `images:`)."""

    max_pixels: int
    max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS
    max_decode_bytes: int | None = None
    keep_metadata: bool = False


def process_image(
    data: bytes, target: Target, *, max_pixels: int, sha256: str | None = None
) -> ProcessedImage:
    """Identify `data` by its bytes, refuse what can't be used, convert what `target` needs."""
    found = open_image(data, target, Limits(max_pixels), sha256=sha256)
    return found if isinstance(found, ProcessedImage) else convert_image(found)


def open_image(
    data: bytes, target: Target, limits: Limits, *, sha256: str | None = None
) -> ProcessedImage | Pending:
    """Identify `data` by its bytes and refuse what can't be used: an image that goes as it
    is comes back ready, one to convert as a `Pending` conversion, nothing decoded yet."""
    sha256 = sha256 or digest(data)
    reader = _Reader(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(reader)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ImageTooLarge("the image has too many pixels") from None
        except Exception:
            raise ImageError("the bytes are not a readable image") from None
    try:
        mime = MIME_BY_FORMAT.get(image.format or "")
        if mime is None:
            raise ImageError(f"unsupported image format {image.format!r}")
        width, height = image.size
        _check_size(width, height, limits.max_pixels, target.min_side)
        if image.format == "GIF":
            check_whole(data)  # its blocks followed, boundedly, before Pillow looks for frames
        plan = _plan(image, mime, target)
        if not plan:
            image.close()
            check_whole(data)  # goes upstream undecoded: its end must be there
            stripped = None if limits.keep_metadata else strip_metadata(data, mime)
            if stripped is not None:
                return ProcessedImage(stripped, mime, width, height, sha256, (METADATA_REMOVED,))
            return ProcessedImage(data, mime, width, height, sha256)
        cost = _decode_cost(image, data, target, limits)
    except ImageError:
        image.close()
        raise
    except (OSError, ValueError, IndexError, EOFError, SyntaxError, struct.error):
        image.close()
        raise ImageError("the image data is truncated or corrupt, or cannot be converted") from None
    return Pending(image, reader, data, mime, sha256, target, plan, cost)


def _decode_cost(image: Image.Image, data: bytes, target: Target, limits: Limits) -> int:
    """What decoding `image` for `target` will take, once what no decoder should be made to
    do is refused: a progressive JPEG of absurdly many scans, more memory than the budget."""
    if image.format == "JPEG" and (scans := jpeg_scans(data)) > limits.max_jpeg_scans:
        raise ImageError(
            f"the JPEG is made of {scans} scans; at most {limits.max_jpeg_scans} are decoded "
            "(images.max_jpeg_scans)"
        )
    full_size, limit = image.size, target.side_limit
    if limit and image.format == "JPEG":
        image.draft("RGB", (limit, limit))  # decode at a fraction of the size when it can
    rotated = _orientation(image) != 1
    resized = bool(limit) and max(image.size) > (limit or 0)
    cost = decode_bytes(image, full_size, resized=resized, rotated=rotated)
    if limits.max_decode_bytes is not None and cost > limits.max_decode_bytes:
        raise ImageTooLarge(
            f"decoding the image would take {cost // MIB} MiB; at most "
            f"{limits.max_decode_bytes // MIB} MiB (images.max_decode_bytes)"
        )
    return cost


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation found in the header, without decoding anything (`getexif` decodes
    a whole PNG to look for EXIF after its pixels)."""
    raw = image.info.get("exif")
    if not isinstance(raw, bytes):
        return 1
    exif = Image.Exif()
    exif.load(raw)
    orientation = exif.get(_ORIENTATION, 1)
    return orientation if isinstance(orientation, int) else 1


def convert_image(pending: Pending, stop: threading.Event | None = None) -> ProcessedImage:
    """Decode and convert a pending image. Setting `stop` meanwhile ends the decoding at its
    next read (`Stopped`)."""
    pending.reader.stop = stop
    with pending.image as image:
        try:
            return _convert(image, pending.mime, pending.target, pending.plan, pending.sha256)
        except (ImageError, Stopped):
            raise
        except (OSError, ValueError, IndexError, EOFError, SyntaxError, struct.error):
            raise ImageError(
                "the image data is truncated or corrupt, or cannot be converted"
            ) from None


def identify_unchanged(head: bytes, target: Target, *, max_pixels: int) -> Identity | None:
    """What the image whose first bytes are `head` is, when it can go upstream as it is: a
    supported, acceptable image that `target` needs no conversion of. None in every other case
    (a conversion to make, an error to report, or too few bytes to tell), which the caller
    settles by reading the whole image with `process_image`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(head))
        with image:
            mime = MIME_BY_FORMAT.get(image.format or "")
            width, height = image.size
            _check_size(width, height, max_pixels, target.min_side)
            if mime is None or _plan(image, mime, target):
                return None
    except Exception:
        return None
    return Identity(mime, width, height)


def _check_size(width: int, height: int, max_pixels: int, min_side: int) -> None:
    if width * height > max_pixels:
        raise ImageTooLarge(f"the image has {width * height} pixels; at most {max_pixels}")
    if width < min_side or height < min_side:
        raise ImageError(
            f"the image is {width}×{height}; this model needs at least {min_side} pixels a side"
        )


def _plan(image: Image.Image, mime: str, target: Target) -> list[str]:
    """The conversions `target` needs, in words; empty when the bytes can go as they are."""
    plan = []
    if mime not in target.formats:
        first_frame = " (first frame)" if getattr(image, "is_animated", False) else ""
        plan.append(f"{mime}{first_frame} → {_output_mime(mime, target)}")
    limit = target.side_limit
    if limit and max(image.size) > limit:
        plan.append(f"resized to fit {limit}×{limit}")
    return plan


def _output_mime(mime: str, target: Target) -> str:
    for candidate in (mime, "image/png", "image/jpeg"):
        if candidate in target.formats:
            return candidate
    return sorted(target.formats)[0]


def _convert(
    image: Image.Image, mime: str, target: Target, plan: list[str], sha256: str
) -> ProcessedImage:
    """Decode the first frame, bring it down to the side limit first (every later step then
    works on the small frame), then turn it upright and to 8 bits a channel."""
    image.seek(0)
    limit = target.side_limit
    orientation = image.getexif().get(_ORIENTATION, 1)
    frame = _eight_bit_grey(image) if image.mode.startswith("I;16") else _loaded(image)
    if limit and max(frame.size) > limit:
        # In place. A large image is first reduced by a whole factor (box averaging) to no
        # less than the limit, then resampled: a quarter of the memory and CPU of reducing it
        # only to twice the limit, for an image that ends up at most `limit` a side anyway.
        frame.thumbnail((limit, limit), Image.Resampling.LANCZOS, reducing_gap=1.0)
    if orientation in _TRANSPOSES:
        frame = frame.transpose(_TRANSPOSES[orientation])
        plan.append("EXIF orientation applied")
    frame = _displayable(frame)
    out_mime = _output_mime(mime, target)
    data = _encode(frame, out_mime)
    return ProcessedImage(data, out_mime, frame.width, frame.height, sha256, tuple(plan))


def _loaded(image: Image.Image) -> Image.Image:
    image.load()
    return image


def _eight_bit_grey(image: Image.Image) -> Image.Image:
    """Deep greyscale (16 bits) scaled to its range in 8 bits: the 16-bit image, then a scaled
    16-bit copy, then the 8-bit one (5 bytes a pixel at the most, where going through 32 bits
    took 11)."""
    image.load()
    low, high = cast(tuple[int, int], image.getextrema())
    scale = 255 / (high - low) if high > low else 1
    return image.point(lambda value: (value - low) * scale).convert("L")


def _displayable(frame: Image.Image) -> Image.Image:
    """8 bits a channel: deep greyscale (32-bit, float) scaled down to `L`."""
    if frame.mode in ("I", "F"):
        low, high = cast(tuple[float, float], frame.getextrema())
        scale = 255 / (high - low) if high > low else 1
        return frame.point(lambda value: (value - low) * scale).convert("L")
    if frame.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
        return frame.convert("RGBA")
    return frame


def _encode(frame: Image.Image, mime: str) -> bytes:
    out = io.BytesIO()
    if mime == "image/jpeg":
        frame.convert("RGB").save(out, "JPEG", quality=90, optimize=False)
    elif mime == "image/webp":
        frame.save(out, "WEBP", quality=90)
    elif mime == "image/gif":
        frame.save(out, "GIF")
    else:
        if frame.mode not in ("1", "L", "LA", "I", "P", "RGB", "RGBA"):
            frame = frame.convert("RGBA")
        frame.save(out, "PNG", compress_level=3)
    return out.getvalue()
