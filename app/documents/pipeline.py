"""Documents in, pages out: every PDF in a chat request read, checked, and for an upstream that
takes images, rendered into its pages, each page's text (when it has any) and then its image.

The page images then go the way of every image (`app.images`): converted to what the upstream
takes, counted against its limits, hashed and cached. An upstream that reads PDFs itself gets
the document as a data URI, of the type read from its bytes.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pybase64
from PIL import Image
from pydantic import PrivateAttr

from app.config import DocumentsConfig, ImagesConfig, RequestsConfig
from app.documents.pool import RenderPool
from app.documents.render import (
    RenderedPage,
    RenderSettings,
    TooManyPages,
    TooMuchText,
    UnreadableDocument,
)
from app.errors import (
    ImageTooLarge,
    InvalidDocument,
    InvalidRequest,
    TooManyImages,
    UnsupportedParameter,
)
from app.errors.quoting import shortened
from app.images.fetch import ImageFetcher, display_url
from app.observe import tracing
from app.observe.metrics import Metrics
from app.observe.record import current_record
from app.server.threads import WorkerThreads
from app.wire.inline import InlineImages
from app.wire.schemas import (
    ChatCompletionRequest,
    ContentPart,
    File,
    FilePart,
    ImageURL,
    ImageURLPart,
    InlineChatRequest,
    Message,
    TextPart,
)

PDF_MAGIC = b"%PDF-"
# PDF readers look for the header this far into a file (some files start with other bytes).
HEADER_WITHIN = 1024
DEFAULT_FILENAME = "document.pdf"
# A payload this long is decoded and hashed off the event loop.
_OFF_LOOP_CHARS = 256 * 1024


@dataclass(frozen=True)
class Document:
    """A document part, read: what it held, and its pages as the upstream gets them."""

    param: str
    filename: str
    source: Literal["data", "url"]
    size: int
    sha256: str
    pages: tuple[RenderedPage, ...]
    render_s: float  # 0 when its pages came from the cache

    def facts(self) -> dict[str, object]:
        """What `describe` says, as JSON values."""
        return {
            "filename": self.filename,
            "source": self.source,
            "bytes": self.size,
            "sha256_prefix": self.sha256[:12],
            "pages": [
                {
                    "text_characters": len(page.text),
                    "mime": page.mime,
                    "width": page.width,
                    "height": page.height,
                    "bytes": len(page.image),
                }
                for page in self.pages
            ],
        }

    def describe(self) -> str:
        texts = ", ".join(f"{len(page.text)}" for page in self.pages)
        images = ", ".join(f"{page.mime} {page.width}×{page.height}" for page in self.pages)
        return (
            f"{self.filename} ({'fetched' if self.source == 'url' else 'data'}), "
            f"{len(self.pages)} page(s), {self.size} bytes, sha256 {self.sha256[:12]}; "
            f"text characters per page: {texts}; page images: {images}"
        )


class DocumentRequest(ChatCompletionRequest):
    """A chat request whose documents were rendered: each became its pages' text and image
    parts. Errors about those images name the document part the client sent."""

    _inline: InlineImages | None = PrivateAttr(default=None)
    _documents: tuple[Document, ...] = PrivateAttr(default=())
    _image_params: tuple[str, ...] = PrivateAttr(default=())

    @property
    def inline(self) -> InlineImages | None:
        return self._inline

    @property
    def documents(self) -> tuple[Document, ...]:
        return self._documents

    @property
    def document_pages(self) -> int:
        return sum(len(document.pages) for document in self._documents)

    def image_parts(self) -> list[tuple[str, ImageURLPart]]:
        found = super().image_parts()
        return [(param, part) for param, (_, part) in zip(self._image_params, found, strict=True)]


class RenderCache:
    """Rendered pages by the document's hash and how it was rendered, least recently used
    first out, within `max_bytes` of page images."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, RenderSettings], tuple[RenderedPage, ...]] = (
            OrderedDict()
        )
        self._bytes = 0

    def get(self, key: tuple[str, RenderSettings]) -> tuple[RenderedPage, ...] | None:
        pages = self._entries.get(key)
        if pages is not None:
            self._entries.move_to_end(key)
        return pages

    def put(self, key: tuple[str, RenderSettings], pages: tuple[RenderedPage, ...]) -> None:
        cost = _cost(pages)
        if cost > self._max_bytes or key in self._entries:
            return
        self._entries[key] = pages
        self._bytes += cost
        while self._bytes > self._max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= _cost(evicted)


class DocumentPipeline:
    def __init__(
        self,
        config: DocumentsConfig,
        requests: RequestsConfig,
        fetcher: ImageFetcher,
        metrics: Metrics | None = None,
        *,
        max_image_pixels: int = ImagesConfig().max_image_pixels,
    ) -> None:
        self._config = config
        self._max_pixels = max_image_pixels
        self._requests = requests
        self._fetcher = fetcher
        self._metrics = metrics or Metrics()
        self._pool = RenderPool(config)
        self._cache = RenderCache(config.cache_bytes)
        self._decoding = WorkerThreads(1)

    def close(self) -> None:
        self._pool.close()

    async def prepare(
        self, request: ChatCompletionRequest, *, native: bool, max_images: int
    ) -> ChatCompletionRequest:
        """`request` with its documents made into what the upstream takes: their pages, for
        one that takes images (`max_images` of them at most, the request's own included);
        the document itself, as a PDF data URI, for one that reads them (`native`)."""
        parts = request.file_parts()
        if not parts:
            return request
        loaded = [(param, part, await self._load(param, part)) for param, part in parts]
        if native:  # megabytes of base64, made on a worker thread
            pdfs = [data for _, _, (data, _) in loaded]
            encoded = await self._decoding.run(lambda: [pybase64.b64encode(pdf) for pdf in pdfs])
            return _with_pdfs(request, loaded, encoded)
        limits = _Limits(
            max_images,
            max_images - len(request.image_parts()),
            self._requests.max_text_chars - _text_chars(request.messages),
        )
        documents: list[Document] = []
        for param, part, (data, source) in loaded:
            document = await self._render(param, part, data, source, limits)
            limits.images_left -= len(document.pages)
            limits.text_left -= sum(len(page.text) for page in document.pages)
            documents.append(document)
        urls = await self._decoding.run(lambda: [_page_urls(document) for document in documents])
        return _with_pages(request, documents, urls)

    async def read(self, part: FilePart, param: str, *, max_pages: int) -> Document:
        """One document part, read and rendered as `prepare` renders it (the same pages, kept
        in the same cache), of at most `max_pages` pages."""
        data, source = await self._load(param, part)
        limits = _Limits(max_pages, max_pages, self._requests.max_text_chars)
        return await self._render(param, part, data, source, limits)

    async def thumbnails(self, document: Document, side: int) -> list[str]:
        """Each page of `document` as a JPEG data URI at most `side` pixels a side."""
        return await self._decoding.run(lambda: [_thumbnail(p, side) for p in document.pages])

    async def _load(self, param: str, part: FilePart) -> tuple[bytes, Literal["data", "url"]]:
        """The document's bytes, checked to be a PDF within `documents.max_bytes`."""
        file = part.file
        if file.file_id is not None and file.file_data is None:
            raise UnsupportedParameter(
                "files by `file_id` are not supported: this gateway serves no Files API; send "
                "the file's content in `file_data`",
                param=param,
            )
        data_or_url = file.file_data
        if not data_or_url:
            raise InvalidRequest("a file part needs `file_data`", param=f"{param}.file.file_data")
        limit = self._config.max_bytes
        if data_or_url[:8].lower().startswith(("http://", "https://")):
            data = await self._fetch(data_or_url, param)
            source: Literal["data", "url"] = "url"
        else:
            data = await self._decode(data_or_url, param, limit)
            source = "data"
        if PDF_MAGIC not in data[:HEADER_WITHIN]:
            raise InvalidDocument(
                "the file is not a PDF (its bytes don't start as one); documents must be PDFs",
                param=param,
            )
        return data, source

    async def _fetch(self, url: str, param: str) -> bytes:
        limit = self._config.max_bytes
        try:
            with tracing.step("document fetch"):
                return await self._fetcher.fetch(
                    url, param, max_bytes=limit, accept=b"application/pdf"
                )
        except ImageTooLarge:
            raise InvalidDocument(
                f"the document at {display_url(url)} is over {limit} bytes (documents.max_bytes)",
                param=param,
            ) from None

    async def _decode(self, text: str, param: str, limit: int) -> bytes:
        """A data URI's payload (whatever type it declares: clients send PDFs as
        `application/pdf`, `application/octet-stream`, even `None`), or bare base64."""
        start = 0
        if text[:5].lower() == "data:":
            comma = text.find(",", 0, 512)
            if comma < 0 or "base64" not in text[5:comma].lower():
                raise InvalidDocument(
                    "a document's data URI must be base64-encoded (data:application/pdf;base64,…)",
                    param=param,
                )
            start = comma + 1
        if (len(text) - start) * 3 // 4 > limit + 3:
            raise InvalidDocument(
                f"the document is over {limit} bytes (documents.max_bytes)", param=param
            )

        def decode() -> bytes:
            return pybase64.b64decode(
                memoryview(text.encode("ascii", "replace"))[start:], validate=True
            )

        try:
            if len(text) - start > _OFF_LOOP_CHARS:
                return await self._decoding.run(decode)
            return decode()
        except (binascii.Error, ValueError):
            raise InvalidDocument(
                "`file_data` is neither a base64 data URI, base64, nor an http(s) URL",
                param=param,
            ) from None

    async def _render(
        self,
        param: str,
        part: FilePart,
        data: bytes,
        source: Literal["data", "url"],
        limits: _Limits,
    ) -> Document:
        config = self._config
        settings = RenderSettings(
            config.dpi, config.max_side, config.max_pages, config.text_layer, self._max_pixels
        )
        sha256 = await self._decoding.run(lambda: hashlib.sha256(data).hexdigest())
        key = (sha256, settings)
        pages = self._cache.get(key)
        render_s = 0.0
        try:
            if pages is None:
                started = time.perf_counter()
                try:
                    with tracing.step("document render") as traced:
                        pages = tuple(
                            await self._pool.render(
                                data, settings, limits.images_left, max(0, limits.text_left)
                            )
                        )
                        traced.set("vision_gateway.document.pages", len(pages))
                finally:
                    render_s = time.perf_counter() - started
                    self._metrics.document_render.observe(render_s)
                self._cache.put(key, pages)
            elif len(pages) > limits.images_left:
                raise TooManyPages(len(pages))
            elif (text := _page_text_over(pages, limits.text_left)) is not None:
                raise TooMuchText(text)
        except UnreadableDocument as exc:
            raise InvalidDocument(exc.message, param=param) from None
        except TooManyPages as exc:
            raise TooManyImages(
                f"the document has {exc.pages} page(s), and each page goes upstream as an "
                f"image: this model takes at most {limits.max_images} image(s) per request, "
                "the pages of its documents included",
                param=param,
            ) from None
        except TooMuchText as exc:
            raise InvalidRequest(
                f"with the text of the document's page {exc.page}, the request holds more than "
                f"{self._requests.max_text_chars} characters of text (requests.max_text_chars)",
                param=param,
            ) from None
        record = current_record()
        record.document_pages += len(pages)
        record.render_s += render_s
        filename = shortened(part.file.filename or "") or DEFAULT_FILENAME
        return Document(param, filename, source, len(data), sha256, pages, render_s)


@dataclass
class _Limits:
    """What a request may still send: images (and pages), and characters of text."""

    max_images: int
    images_left: int
    text_left: int


def _page_text_over(pages: Sequence[RenderedPage], left: int) -> int | None:
    """The page (from 1) whose text passes `left` characters in all, if one does."""
    for number, page in enumerate(pages, start=1):
        left -= len(page.text)
        if left < 0:
            return number
    return None


def _thumbnail(page: RenderedPage, side: int) -> str:
    with Image.open(io.BytesIO(page.image)) as image:
        image.thumbnail((side, side))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=80)
    return "data:image/jpeg;base64," + _base64(out.getvalue())


def _cost(pages: Sequence[RenderedPage]) -> int:
    return sum(len(page.image) + len(page.text) for page in pages)


def _text_chars(messages: Sequence[Message]) -> int:
    total = 0
    for message in messages:
        content = message.content
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(part.text) for part in content if isinstance(part, TextPart))
    return total


def _base64(data: bytes) -> str:
    return pybase64.b64encode(data).decode("ascii")


def _page_urls(document: Document) -> list[str]:
    """Each page's image as a data URI (on a worker thread: a document's pages are megabytes)."""
    return [f"data:{page.mime};base64,{_base64(page.image)}" for page in document.pages]


def _page_parts(document: Document, urls: list[str]) -> list[ContentPart]:
    parts: list[ContentPart] = []
    for page, url in zip(document.pages, urls, strict=True):
        if page.text:
            parts.append(TextPart(type="text", text=page.text))
        parts.append(ImageURLPart(type="image_url", image_url=ImageURL(url=url)))
    return parts


def _with_pages(
    request: ChatCompletionRequest, documents: list[Document], urls: list[list[str]]
) -> DocumentRequest:
    """`request` with each document part replaced by its pages' parts, `urls` their images."""
    by_param = {doc.param: (doc, pages) for doc, pages in zip(documents, urls, strict=True)}
    image_params: list[str] = []
    messages: list[Message] = []
    for i, message in enumerate(request.messages):
        content = message.content
        if not isinstance(content, list):
            messages.append(message)
            continue
        parts: list[ContentPart] = []
        for j, part in enumerate(content):
            param = f"messages[{i}].content[{j}]"
            if isinstance(part, FilePart):
                pages = _page_parts(*by_param[param])
                parts.extend(pages)
                image_params.extend(param for p in pages if isinstance(p, ImageURLPart))
            else:
                parts.append(part)
                if isinstance(part, ImageURLPart):
                    image_params.append(f"{param}.image_url")
        messages.append(message.model_copy(update={"content": parts}))
    values = dict(request)
    values["messages"] = messages
    expanded = DocumentRequest.model_construct(
        _fields_set={*request.model_fields_set, "messages"}, **values
    )
    expanded._inline = request.inline
    expanded._documents = tuple(documents)
    expanded._image_params = tuple(image_params)
    return expanded


def _with_pdfs(
    request: ChatCompletionRequest,
    loaded: list[tuple[str, FilePart, tuple[bytes, Literal["data", "url"]]]],
    encoded_pdfs: list[bytes],
) -> InlineChatRequest:
    """`request` with each document as a PDF data URI, for an upstream that reads PDFs: the
    type is the one its bytes are, whatever the client declared, and a URL is fetched.
    `encoded_pdfs` are their bytes in base64, which go into the upstream body as they are,
    as a large image does, never into a string (see `InlineImages.add`)."""
    inline = InlineImages.extending(request.inline)
    replaced: dict[str, FilePart] = {}
    for (param, part, _), encoded in zip(loaded, encoded_pdfs, strict=True):
        file = File(
            filename=shortened(part.file.filename or "") or DEFAULT_FILENAME,
            file_data=inline.add("application/pdf", encoded),
        )
        replaced[param] = part.model_copy(update={"file": file})
    messages: list[Message] = []
    for i, message in enumerate(request.messages):
        content = message.content
        if isinstance(content, list) and any(isinstance(part, FilePart) for part in content):
            parts = [
                replaced.get(f"messages[{i}].content[{j}]", part) for j, part in enumerate(content)
            ]
            message = message.model_copy(update={"content": parts})
        messages.append(message)
    values = dict(request)
    values["messages"] = messages
    carrying = InlineChatRequest.model_construct(
        _fields_set={*request.model_fields_set, "messages"}, **values
    )
    carrying._inline = inline
    return carrying
