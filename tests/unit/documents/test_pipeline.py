"""The document pipeline: a chat request's file parts read as clients send them, checked, and
made into what the upstream takes (page texts and images, or the PDF itself)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from app.config import DocumentsConfig, RequestsConfig
from app.documents import DocumentPipeline, DocumentRequest
from app.errors import InvalidDocument, InvalidRequest, TooManyImages, UnsupportedParameter
from app.images.fetch import ImageFetcher
from app.observe.record import RequestRecord, open_record
from app.wire.schemas import ChatCompletionRequest, FilePart, ImageURLPart, TextPart
from tests.documents import REPORT_TEXTS, report_pdf

pytestmark = pytest.mark.anyio

PNG_1x1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}


def file_part(file_data: str | None = None, **file: Any) -> dict[str, Any]:
    if file_data is not None:
        file["file_data"] = file_data
    return {"type": "file", "file": file}


def request_of(*parts: dict[str, Any]) -> ChatCompletionRequest:
    content = [{"type": "text", "text": "What does it say?"}, *parts]
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": content}]}
    )


async def pages_of(
    documents: DocumentPipeline, request: ChatCompletionRequest, max_images: int = 16
) -> DocumentRequest:
    prepared = await documents.prepare(request, native=False, max_images=max_images)
    assert isinstance(prepared, DocumentRequest)
    return prepared


@pytest.mark.parametrize(
    "file_data",
    [
        report_pdf().data_uri,
        f"data:application/octet-stream;base64,{report_pdf().base64}",
        f"data:None;base64,{report_pdf().base64}",
        report_pdf().base64,
    ],
    ids=["pdf-data-uri", "octet-stream", "declared-none", "bare-base64"],
)
async def test_a_document_becomes_each_page_s_text_then_its_image(
    document_pipeline: DocumentPipeline, file_data: str
) -> None:
    record = open_record(RequestRecord())

    prepared = await pages_of(document_pipeline, request_of(file_part(file_data, filename="x")))

    content = prepared.messages[0].content
    assert isinstance(content, list)
    kinds = [(type(part).__name__, getattr(part, "text", None)) for part in content]
    assert kinds == [
        ("TextPart", "What does it say?"),
        ("TextPart", REPORT_TEXTS[0]),
        ("ImageURLPart", None),
        ("ImageURLPart", None),  # the scanned page has no text
        ("TextPart", REPORT_TEXTS[2]),
        ("ImageURLPart", None),
    ]
    urls = [part.image_url.url for part in content if isinstance(part, ImageURLPart)]
    assert [url.split(";")[0] for url in urls] == [
        "data:image/png",
        "data:image/jpeg",
        "data:image/png",
    ]
    assert prepared.document_pages == 3
    assert record.document_pages == 3
    [document] = prepared.documents
    assert (document.filename, document.source, len(document.pages)) == ("x", "data", 3)


async def test_the_page_images_are_named_by_the_document_part_and_others_keep_their_place(
    document_pipeline: DocumentPipeline,
) -> None:
    request = request_of(file_part(report_pdf().data_uri), IMAGE)

    prepared = await pages_of(document_pipeline, request)

    assert [param for param, _ in prepared.image_parts()] == [
        "messages[0].content[1]",
        "messages[0].content[1]",
        "messages[0].content[1]",
        "messages[0].content[2].image_url",
    ]


async def test_a_document_of_more_pages_than_the_model_takes_images_is_refused_by_its_param(
    document_pipeline: DocumentPipeline,
) -> None:
    with pytest.raises(TooManyImages) as refused:
        await pages_of(document_pipeline, request_of(IMAGE, file_part(report_pdf().data_uri)), 3)

    assert refused.value.param == "messages[0].content[2]"
    assert "3 page(s)" in refused.value.message
    assert "at most 3 image(s)" in refused.value.message


async def test_a_document_sent_again_is_not_rendered_again(
    document_pipeline: DocumentPipeline,
) -> None:
    first = await pages_of(document_pipeline, request_of(file_part(report_pdf().data_uri)))
    again = await pages_of(document_pipeline, request_of(file_part(report_pdf().base64)))

    assert first.documents[0].render_s > 0
    assert again.documents[0].render_s == 0
    assert again.documents[0].pages == first.documents[0].pages


@pytest.mark.parametrize(
    ("part", "error", "param", "says"),
    [
        (
            file_part(file_id="file-abc"),
            UnsupportedParameter,
            "messages[0].content[1]",
            "Files API",
        ),
        (
            file_part(filename="a.pdf"),
            InvalidRequest,
            "messages[0].content[1].file.file_data",
            "needs",
        ),
        (
            file_part(f"data:application/pdf;base64,{base64.b64encode(PNG_1x1).decode()}"),
            InvalidDocument,
            "messages[0].content[1]",
            "not a PDF",
        ),
        (
            file_part("data:application/pdf,%25PDF-1.7"),
            InvalidDocument,
            "messages[0].content[1]",
            "base64",
        ),
        (file_part("not base64 at all!"), InvalidDocument, "messages[0].content[1]", "neither"),
    ],
    ids=["file-id", "no-data", "a-png-declared-pdf", "percent-encoded", "garbage"],
)
async def test_a_document_the_gateway_cannot_read_is_refused_by_its_param(
    document_pipeline: DocumentPipeline,
    part: dict[str, Any],
    error: type[InvalidRequest],
    param: str,
    says: str,
) -> None:
    with pytest.raises(error) as refused:
        await document_pipeline.prepare(request_of(part), native=False, max_images=16)

    assert type(refused.value) is error
    assert refused.value.param == param
    assert says in refused.value.message


async def test_a_document_over_max_bytes_is_refused_before_it_is_decoded(
    unreachable_fetcher: ImageFetcher,
) -> None:
    documents = DocumentPipeline(
        DocumentsConfig(max_bytes=10_000), RequestsConfig(), unreachable_fetcher
    )
    try:
        with pytest.raises(InvalidDocument) as refused:
            await documents.prepare(
                request_of(file_part(report_pdf().data_uri)), native=False, max_images=16
            )
    finally:
        documents.close()

    assert "documents.max_bytes" in refused.value.message


async def test_text_from_documents_counts_against_the_request_s_text(
    unreachable_fetcher: ImageFetcher,
) -> None:
    limit = len("What does it say?") + len(REPORT_TEXTS[0] or "") + 10
    documents = DocumentPipeline(
        DocumentsConfig(), RequestsConfig(max_text_chars=limit), unreachable_fetcher
    )
    try:
        with pytest.raises(InvalidRequest) as refused:
            await documents.prepare(
                request_of(file_part(report_pdf().data_uri)), native=False, max_images=16
            )
    finally:
        documents.close()

    assert "page 3" in refused.value.message
    assert "requests.max_text_chars" in refused.value.message


async def test_an_upstream_that_reads_pdfs_gets_the_document_as_a_pdf_data_uri(
    document_pipeline: DocumentPipeline,
) -> None:
    record = open_record(RequestRecord())
    request = request_of(file_part(report_pdf().base64, filename="C:\\scans\\" + "x" * 300))

    prepared = await document_pipeline.prepare(request, native=True, max_images=16)

    content = prepared.messages[0].content
    assert isinstance(content, list)
    assert isinstance(content[0], TextPart)
    assert isinstance(content[1], FilePart)
    # The document's base64 goes into the upstream body as bytes, where its stand-in is.
    assert prepared.inline is not None
    pdf = prepared.inline.get(content[1].file.file_data or "")
    assert pdf is not None
    assert pdf.header + bytes(pdf.payload).decode() == report_pdf().data_uri
    assert content[1].file.filename is not None
    assert len(content[1].file.filename) <= 101  # shortened, not refused
    assert record.document_pages == 0
