"""Rendering a PDF's pages to images, and reading their text, with PDFium.

This module runs in the render processes (`app.documents.pool`), one document at a time in
each: PDFium is not thread-safe, a document can hold anything, and a process can be stopped
(the request went away, or its deadline passed) where a thread can't. It imports nothing of
the gateway, so that a render process starts light.
"""

from __future__ import annotations

import io
import os
import resource
import signal
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageChops

POINTS_PER_INCH = 72
# A page so large that its longest side within `max_side` pixels comes out coarser than this
# would be unreadable: it is refused instead.
MIN_DPI = 36
# A page rendered in colour is sent as greyscale when no channel differs from another by more
# than this in any block of 16 by 16 pixels: most documents are black text on white.
_GREY_TOLERANCE = 6
_JPEG_QUALITY = 85
# How far a render process steps back when the CPU is contended (a nice value).
RENDER_NICENESS = 10
_PNG_LEVEL = 1  # sharp text compresses well already; more effort buys little


@dataclass(frozen=True)
class RenderSettings:
    """How pages are rendered: what makes two renders of a document the same."""

    dpi: int
    max_side: int
    max_pages: int
    text_layer: bool
    max_image_pixels: int  # an image a page draws may have at most this many


@dataclass(frozen=True)
class RenderedPage:
    """One page as the upstream gets it: an image (PNG or JPEG) and the page's text."""

    image: bytes
    mime: str
    width: int
    height: int
    text: str


class UnreadableDocument(Exception):
    """What is wrong with a document, in words a client can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TooManyPages(Exception):
    """The document has more pages than the request may still send as images."""

    def __init__(self, pages: int) -> None:
        super().__init__(pages)
        self.pages = pages


class TooMuchText(Exception):
    """The document's text passes what the request may still hold, on `page` (from 1)."""

    def __init__(self, page: int) -> None:
        super().__init__(page)
        self.page = page


def start_render_process(max_memory_bytes: int) -> None:
    """A render process's first steps: cap what it may map, so that a document that asks for
    more fails here instead of taking the machine's memory; yield the CPU to the gateway's own
    process, whose event loop answers every other request meanwhile; and let SIGTERM end it at
    once, also in the middle of a page (a Python handler would wait for PDFium to return)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = max_memory_bytes if hard == resource.RLIM_INFINITY else min(max_memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    os.nice(RENDER_NICENESS)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def render_document(
    data: bytes, settings: RenderSettings, max_images: int, max_text_chars: int
) -> list[RenderedPage]:
    """Every page of the PDF in `data`, in order; `UnreadableDocument` says what's wrong.
    The request it came in may still send `max_images` images and `max_text_chars` of text
    (`TooManyPages`, `TooMuchText` otherwise)."""
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise UnreadableDocument(_load_failure(exc)) from None
    try:
        count = len(document)
        if count == 0:
            raise UnreadableDocument("the document has no pages")
        if count > settings.max_pages:
            raise UnreadableDocument(
                f"the document has {count} pages, more than the {settings.max_pages} this "
                "gateway reads (documents.max_pages)"
            )
        if count > max_images:
            raise TooManyPages(count)
        pages: list[RenderedPage] = []
        text_left = max_text_chars
        for index in range(count):
            page = _render_page(document, index, settings, text_left)
            text_left -= len(page.text)
            pages.append(page)
        return pages
    except (pdfium.PdfiumError, MemoryError, OSError, ValueError) as exc:
        raise UnreadableDocument(f"the document could not be rendered ({_short(exc)})") from None
    finally:
        document.close()


def _render_page(
    document: pdfium.PdfDocument, index: int, settings: RenderSettings, text_left: int
) -> RenderedPage:
    page = document[index]
    try:
        width, height = page.get_size()
        if not (width > 0 and height > 0):  # also false for NaN
            raise UnreadableDocument(f"page {index + 1} has no area ({width:g}×{height:g} pt)")
        scale = min(settings.dpi / POINTS_PER_INCH, settings.max_side / max(width, height))
        if scale < MIN_DPI / POINTS_PER_INCH:
            raise UnreadableDocument(
                f"page {index + 1} is {width / POINTS_PER_INCH:.0f}×"
                f"{height / POINTS_PER_INCH:.0f} inches: within documents.max_side "
                f"({settings.max_side} px) it would come out at under {MIN_DPI} dpi, too "
                "coarse to read"
            )
        _check_images(page, index, settings.max_image_pixels)
        bitmap = page.render(scale=scale, may_draw_forms=False, rev_byteorder=True)
        try:
            image = bitmap.to_pil()
        finally:
            bitmap.close()
        text = _text(page, index, text_left) if settings.text_layer else ""
        data, mime = _encode(image, has_text=bool(text))
        return RenderedPage(data, mime, image.width, image.height, text)
    finally:
        page.close()


def _check_images(page: pdfium.PdfPage, index: int, max_pixels: int) -> None:
    """Refuse a page that draws an image of more pixels than any image may have: decoding it
    is where a small document takes gigabytes (PDFium may skip it, and the model would see
    the page without it)."""
    for found in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=4):
        width, height = found.get_px_size()
        if width * height > max_pixels:
            raise UnreadableDocument(
                f"page {index + 1} draws an image of {width}×{height} pixels, more than "
                f"{max_pixels} (images.max_image_pixels)"
            )


def _text(page: pdfium.PdfPage, index: int, left: int) -> str:
    textpage = page.get_textpage()
    try:
        if textpage.count_chars() > left:
            raise TooMuchText(index + 1)
        return str(textpage.get_text_range()).strip()
    finally:
        textpage.close()


def _encode(image: Image.Image, *, has_text: bool) -> tuple[bytes, str]:
    """A page image as few bytes as it takes: greyscale when it has no colour, PNG when it is
    text (JPEG blurs sharp glyphs and gains nothing on them), JPEG otherwise."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if _is_grey(image):
        image = image.convert("L")
    out = io.BytesIO()
    if has_text and image.mode == "L":
        image.save(out, "PNG", compress_level=_PNG_LEVEL)
        return out.getvalue(), "image/png"
    image.save(out, "JPEG", quality=_JPEG_QUALITY)
    return out.getvalue(), "image/jpeg"


def _is_grey(image: Image.Image) -> bool:
    blocks = image.reduce(16) if min(image.size) >= 16 else image
    red, green, blue = blocks.split()
    return all(
        ImageChops.difference(a, b).getextrema()[1] <= _GREY_TOLERANCE  # type: ignore[operator]
        for a, b in ((red, green), (green, blue))
    )


def _load_failure(exc: pdfium.PdfiumError) -> str:
    if exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
        return "the document is encrypted (protected by a password)"
    if exc.err_code == pdfium_c.FPDF_ERR_SECURITY:
        return "the document uses a security handler that can't be read"
    return "the document is not a readable PDF (it may be truncated or corrupt)"


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 100 else text[:100] + "…"
