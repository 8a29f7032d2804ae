"""Reading and converting image bytes with Pillow. Blocking: run it in a worker thread."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from typing import cast

from PIL import Image, ImageOps

from app.errors import ImageError, ImageTooLarge
from app.images.complete import check_whole

_ORIENTATION = 0x0112  # the EXIF tag
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


def process_image(
    data: bytes, target: Target, *, max_pixels: int, sha256: str | None = None
) -> ProcessedImage:
    """Identify `data` by its bytes, refuse what can't be used, convert what `target` needs."""
    sha256 = sha256 or digest(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ImageTooLarge("the image has too many pixels") from None
        except Exception:
            raise ImageError("the bytes are not a readable image") from None
    with image:
        mime = MIME_BY_FORMAT.get(image.format or "")
        if mime is None:
            raise ImageError(f"unsupported image format {image.format!r}")
        width, height = image.size
        _check_size(width, height, max_pixels, target.min_side)
        try:
            plan = _plan(image, mime, target)
            if not plan:
                check_whole(data)  # goes upstream undecoded: its end must be there
                return ProcessedImage(data, mime, width, height, sha256)
            return _convert(image, mime, target, plan, sha256)
        except ImageError:
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
    image.seek(0)
    limit = target.side_limit
    if limit and image.format == "JPEG":
        image.draft("RGB", (limit, limit))  # decode at a fraction of the size when it can
    rotated = image.getexif().get(_ORIENTATION, 1) != 1
    frame = _displayable(ImageOps.exif_transpose(image) if rotated else image)
    if limit and max(frame.size) > limit:
        # In place. A large image is first reduced by a whole factor (box averaging) to no
        # less than the limit, then resampled: a quarter of the memory and CPU of reducing it
        # only to twice the limit, for an image that ends up at most `limit` a side anyway.
        frame.thumbnail((limit, limit), Image.Resampling.LANCZOS, reducing_gap=1.0)
    out_mime = _output_mime(mime, target)
    data = _encode(frame, out_mime)
    if rotated:
        plan.append("EXIF orientation applied")
    return ProcessedImage(data, out_mime, frame.width, frame.height, sha256, tuple(plan))


def _displayable(frame: Image.Image) -> Image.Image:
    """8 bits a channel: deep greyscale (16-bit, 32-bit, float) scaled down to `L`."""
    frame.load()
    if frame.mode.startswith("I;16"):
        frame = frame.convert("I")
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
