"""Rendering a PDF in this process: pages as images in the type that suits them, their text,
and what makes a document unreadable, said in words a client can act on."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app.documents.render import (
    RenderedPage,
    RenderSettings,
    TooManyPages,
    TooMuchText,
    UnreadableDocument,
    render_document,
)
from tests.documents import (
    REPORT_TEXTS,
    deep_pdf,
    encrypted_pdf,
    image_bomb_pdf,
    pages_pdf,
    report_pdf,
)

SETTINGS = RenderSettings(
    dpi=150, max_side=1600, max_pages=50, text_layer=True, max_image_pixels=50_000_000
)
PLENTY = 1_000_000


def render(
    data: bytes, settings: RenderSettings = SETTINGS, images: int = 16
) -> list[RenderedPage]:
    return render_document(data, settings, images, PLENTY)


def test_each_page_becomes_an_image_with_its_text_in_order() -> None:
    pages = render(report_pdf().data)

    assert [page.text for page in pages] == [text or "" for text in REPORT_TEXTS]
    for page in pages:
        decoded = Image.open(io.BytesIO(page.image))
        assert decoded.size == (page.width, page.height)
        assert Image.MIME[decoded.format or ""] == page.mime
    # A letter page at 150 dpi would be 1275 by 1650: its longer side is held to 1600.
    assert (pages[0].width, pages[0].height) == (1237, 1600)


def test_text_pages_go_as_greyscale_png_and_a_scanned_page_as_jpeg() -> None:
    text_page, scanned, _ = render(report_pdf().data)

    assert text_page.mime == "image/png"
    assert Image.open(io.BytesIO(text_page.image)).mode == "L"
    assert scanned.mime == "image/jpeg"
    assert Image.open(io.BytesIO(scanned.image)).mode == "RGB"  # its stamp is red


@pytest.mark.parametrize(
    ("dpi", "max_side", "size"), [(72, 1600, (612, 792)), (300, 1000, (773, 1000))]
)
def test_pages_render_at_the_dpi_within_max_side(
    dpi: int, max_side: int, size: tuple[int, int]
) -> None:
    settings = RenderSettings(dpi, max_side, 50, True, 50_000_000)

    [page, *_] = render(report_pdf().data, settings)

    assert (page.width, page.height) == size


def test_without_the_text_layer_pages_carry_no_text() -> None:
    settings = RenderSettings(150, 1600, 50, False, 50_000_000)

    assert [page.text for page in render(report_pdf().data, settings)] == ["", "", ""]


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (encrypted_pdf().data, "encrypted"),
        (report_pdf().data[:2000], "not a readable PDF"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 40, "not a readable PDF"),
        (pages_pdf(0).data, "not a readable PDF"),
        (pages_pdf(51).data, "51 pages, more than the 50"),
        (pages_pdf(10_000).data, "10000 pages"),
        (pages_pdf(1, (14_400, 14_400)).data, "200×200 inches"),
        (deep_pdf().data, "could not be rendered"),
        (image_bomb_pdf().data, "30000×30000 pixels"),
    ],
    ids=[
        "encrypted",
        "truncated",
        "corrupt",
        "no-pages",
        "51-pages",
        "10000-pages",
        "200-inch-page",
        "deep-page-tree",
        "image-bomb",
    ],
)
def test_unreadable_documents_say_why(document: bytes, says: str) -> None:
    with pytest.raises(UnreadableDocument) as refused:
        render(document)

    assert says in refused.value.message


def test_more_pages_than_the_request_may_still_send_is_told_before_rendering() -> None:
    with pytest.raises(TooManyPages) as refused:
        render(report_pdf().data, images=2)

    assert refused.value.pages == 3


def test_text_past_what_the_request_may_hold_names_the_page() -> None:
    first = len(REPORT_TEXTS[0] or "")

    with pytest.raises(TooMuchText) as refused:
        render_document(report_pdf().data, SETTINGS, 16, first + 5)

    assert refused.value.page == 3
