"""The image pipeline every provider uses: each image part made into what its upstream takes."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import pybase64

from app.config import ImagesConfig
from app.errors import GatewayError, ImageTooLarge
from app.images.cache import ImageCache
from app.images.conversion import Converter, Scan
from app.images.fetch import ImageFetcher, display_url
from app.images.intake import (
    check_image_parts,
    decode_data_uri,
    decoded_size,
    payload_start,
    scan_data_uri,
)
from app.images.process import (
    WEB_FORMATS,
    ProcessedImage,
    Target,
)
from app.images.urls import parse_image_url
from app.observe import tracing
from app.observe.metrics import Metrics
from app.observe.record import current_record
from app.wire.hashed import HashedURI
from app.wire.inline import InlineImages, InlineURI
from app.wire.schemas import ChatCompletionRequest, ImageURLPart, Message


@dataclass(frozen=True)
class ImageNeeds:
    """What an upstream takes. The pipeline delivers exactly this."""

    urls: bool = True  # fetches http(s) URLs itself; otherwise the gateway inlines the bytes
    formats: frozenset[str] = WEB_FORMATS
    max_side: int | None = None
    min_side: int = 1  # the smallest side it reads, in pixels
    max_images: int | None = None
    max_bytes: int | None = None
    mixed: bool = True  # URLs and inline images may share one request
    raw_bytes: bool = False  # reads the image bytes themselves (multipart, uploads)


@dataclass(frozen=True)
class PreparedImage:
    """One image part as it goes upstream: a URL passed on, or checked bytes."""

    param: str
    source: Literal["url", "data_uri"]
    url: str  # the client's URL (for data URIs: the original URI)
    image: ProcessedImage | None = None  # None: a URL passed on unfetched
    respelled: bool = False  # a data URI whose base64 was broken into lines: it goes re-encoded
    # A large image that goes inline: its base64, made on a worker thread (its bytes dropped).
    encoded: bytes | None = None

    @property
    def replaced(self) -> bool:
        """Whether upstreams get something else than the client's part: fetched bytes, converted
        bytes, or a data URI whose declared type was wrong. Otherwise a data URI goes on as it
        came: no need to encode the same bytes again."""
        if self.image is None:
            return False
        if self.source == "url" or self.image.converted or self.respelled:
            return True
        # Only the canonical spelling with the real type goes on untouched.
        return not self.url.startswith(f"data:{self.image.mime};base64,")

    def without_bytes(self) -> PreparedImage:
        """The same facts without the image's bytes, once nothing needs them any more (an
        upstream body holds its base64 already)."""
        if self.image is None or not self.image.data:
            return self
        return dataclasses.replace(self, image=self.image.without_data())

    def upstream_url(self) -> str:
        """What to put in an OpenAI-style `image_url.url` for this image."""
        return to_data_uri(self.image) if self.replaced and self.image else self.url

    def facts(self) -> dict[str, object]:
        """What `describe` says, as JSON values."""
        facts: dict[str, object] = {
            "source": self.source,
            "url": None if self.source == "data_uri" else display_url(self.url),
            "fetched": self.source == "url" and self.image is not None,
        }
        if self.image is not None:
            image = self.image
            facts.update(
                mime=image.mime,
                width=image.width,
                height=image.height,
                bytes=image.size,
                sha256_prefix=image.sha256[:12],
                conversions=list(image.conversions),
            )
        return facts

    def describe(self) -> str:
        origin = "data URI" if self.source == "data_uri" else f"URL {display_url(self.url)}"
        if self.image is None:
            return f"{origin}, passed on unfetched"
        image = self.image
        fetched = ", fetched" if self.source == "url" else ""
        done = "; ".join(image.conversions) if image.conversions else "no conversion"
        return (
            f"{origin}{fetched}, {image.mime}, {image.width}×{image.height}, "
            f"{image.size} bytes, sha256 {image.sha256[:12]}, {done}"
        )


# Smaller images are encoded where they are carried: quicker than a worker thread's turn.
ENCODE_ON_LOOP_BYTES = 256 * 1024


def is_data_uri(url: str) -> bool:
    return url[:5].lower() == "data:"


def to_data_uri(image: ProcessedImage) -> str:
    return f"data:{image.mime};base64,{pybase64.b64encode(image.data).decode()}"


class ImagePipeline:
    def __init__(
        self,
        limits: ImagesConfig,
        fetcher: ImageFetcher,
        cache: ImageCache,
        metrics: Metrics | None = None,
    ) -> None:
        self._limits = limits
        self._fetcher = fetcher
        self._cache = cache
        self._metrics = metrics or Metrics()
        self._converter = Converter(limits, cache)

    async def prepare(
        self, request: ChatCompletionRequest, needs: ImageNeeds
    ) -> list[PreparedImage]:
        """Check every image part and deliver it in the form `needs` asks for."""
        check_image_parts(request, self._limits, needs.max_images)
        parts = request.image_parts()
        if not parts:
            return []
        has_inline = any(is_data_uri(p.image_url.url) for _, p in parts)
        pass_urls = needs.urls and self._limits.fetch_remote == "auto"
        pass_urls = pass_urls and (needs.mixed or not has_inline)
        prepared: dict[int, PreparedImage] = {}
        for index, (param, part) in enumerate(parts):
            url = part.image_url.url
            if pass_urls and not is_data_uri(url):  # nothing to wait for
                parse_image_url(url, param)
                prepared[index] = PreparedImage(param, "url", url)
        # A few fetches at a time per request; the first failure stops the others.
        fetches = asyncio.Semaphore(self._limits.max_fetches_per_request)
        work = {
            index: self._for_upstream(
                self._prepare_one(param, part, needs, fetches, request.inline), needs
            )
            for index, (param, part) in enumerate(parts)
            if index not in prepared
        }
        if len(work) == 1:
            [(index, one)] = work.items()
            prepared[index] = await one
        elif work:
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = {index: group.create_task(job) for index, job in work.items()}
            except* GatewayError as failures:
                raise failures.exceptions[0] from None
            prepared.update((index, task.result()) for index, task in tasks.items())
        return [prepared[index] for index in range(len(parts))]

    async def _for_upstream(
        self, preparing: Awaitable[PreparedImage], needs: ImageNeeds
    ) -> PreparedImage:
        """One image part as its upstream takes it; a large image that goes inline as base64
        has it made here, on a worker thread, where the event loop would stall for it."""
        prepared = await preparing
        image = prepared.image
        if needs.raw_bytes or not prepared.replaced or image is None:
            return prepared
        if len(image.data) <= ENCODE_ON_LOOP_BYTES:
            return prepared
        data, cost = image.data, len(image.data) * 4 // 3
        encoded = await self._converter.conversions.run(
            current_record().client, cost, lambda _: pybase64.b64encode(data)
        )
        return dataclasses.replace(prepared, image=image.without_data(), encoded=encoded)

    async def _prepare_one(
        self,
        param: str,
        part: ImageURLPart,
        needs: ImageNeeds,
        fetches: asyncio.Semaphore,
        inline: InlineImages | None,
    ) -> PreparedImage:
        """A data URI checked (and converted if need be), or a URL fetched."""
        url = part.image_url.url
        low = part.image_url.detail == "low"
        target = Target(needs.formats, needs.max_side, low, needs.min_side)
        if is_data_uri(url):
            max_bytes = self._max_bytes(needs)
            if isinstance(url, HashedURI) and (
                known := self._known(url, param, target, needs, max_bytes)
            ):
                return known
            # A large URI is still in the request body; `url` stands in for it. A URI parsed
            # from JSON may have its base64 broken into lines (as MIME writes it).
            source: str | InlineURI = (inline.get(url) if inline else None) or url
            respelled = isinstance(source, str) and ("\n" in source or "\r" in source)
            if respelled:
                source = "".join(url.split())
            image = await self._process(
                lambda: decode_data_uri(source, param, max_bytes),
                target,
                param,
                # An upstream that takes the URI as it is needs only what's in it, not its bytes.
                scan=None
                if needs.raw_bytes or respelled
                else lambda probe, feed: scan_data_uri(source, param, max_bytes, probe, feed),
                uri=url,
                load_bytes=_decoded_bytes(source),
            )
            prepared = PreparedImage(param, "data_uri", url, image, respelled)
            if prepared.image is not None and not (prepared.replaced or needs.raw_bytes):
                # The client's URI goes on as it is: don't hold a second copy meanwhile.
                prepared = dataclasses.replace(prepared, image=prepared.image.without_data())
            return prepared
        parse_image_url(url, param)
        async with fetches:
            with tracing.step("image fetch") as traced:
                data = await self._fetcher.fetch(url, param)
                traced.set("vision_gateway.image.bytes", len(data))
        self._metrics.image_bytes.labels("fetched").inc(len(data))
        if len(data) > self._max_bytes(needs):
            raise ImageTooLarge(f"the image is over {self._max_bytes(needs)} bytes", param=param)
        return PreparedImage(param, "url", url, await self._process(lambda: data, target, param))

    def _known(
        self, uri: HashedURI, param: str, target: Target, needs: ImageNeeds, max_bytes: int
    ) -> PreparedImage | None:
        """A data URI whose hash is known, as this worker found it the last time it checked the
        same image for `target`, without decoding or hashing it again (a stored conversation's
        earlier images, turn after turn). None if it hasn't, or the upstream reads the original
        bytes, or the URI names another type than the image's: the usual path settles those."""
        image = self._cache.get((uri.sha256, target))
        if image is None or (needs.raw_bytes and not image.converted):
            return None
        if not image.converted and not uri.startswith(f"data:{image.mime};base64,"):
            return None
        size = decoded_size(uri, payload_start(uri, param, max_bytes))
        if size > max_bytes:
            raise ImageTooLarge(f"the image is over {max_bytes} bytes", param=param)
        self._count(image, size)
        return PreparedImage(param, "data_uri", uri, image)

    def _count(self, image: ProcessedImage, size: int) -> None:
        """Note a checked image of `size` bytes in the request's record and the metrics."""
        current_record().images.append((size, image.sha256[:12]))
        if image.converted:
            self._metrics.image_bytes.labels("converted").inc(len(image.data))

    def _max_bytes(self, needs: ImageNeeds) -> int:
        limit = self._limits.max_image_bytes
        return min(limit, needs.max_bytes) if needs.max_bytes else limit

    async def _process(
        self,
        load: Callable[[], bytes],
        target: Target,
        param: str,
        *,
        load_bytes: int = 0,
        scan: Scan | None = None,
        uri: str = "",
    ) -> ProcessedImage:
        """The image `load` gives, as `target` wants it (see `Converter.process`), counted."""
        with tracing.step("image conversion") as traced:
            image, size = await self._converter.process(
                load, target, param, load_bytes=load_bytes, scan=scan, uri=uri
            )
            traced.set("vision_gateway.image.converted", image.converted)
        self._count(image, size)
        return image


def _decoded_bytes(uri: str | InlineURI) -> int:
    """About what a data URI decodes to: what reading it holds."""
    return (len(uri.payload) if isinstance(uri, InlineURI) else len(uri)) * 3 // 4


def with_images(
    request: ChatCompletionRequest, images: list[PreparedImage]
) -> tuple[ChatCompletionRequest, InlineImages | None]:
    """A copy of `request` whose image parts carry what the upstream should get (`images` are
    its image parts, in order), and the data URIs their stand-ins are for: the request's own,
    and one more for each image the gateway fetched or converted, its base64 made once as
    bytes (never a string, nor a copy in an encoded body: see `InlineImages.add`), on a
    worker thread for a large one (`ImagePipeline.prepare` made it)."""
    if not any(image.replaced for image in images):
        return request, request.inline
    inline = InlineImages.extending(request.inline)
    changed = iter(images)
    messages: list[Message] = []
    for message in request.messages:
        content = message.content
        if isinstance(content, list) and any(isinstance(p, ImageURLPart) for p in content):
            parts = [
                _carrying(part, next(changed), inline) if isinstance(part, ImageURLPart) else part
                for part in content
            ]
            message = message.model_copy(update={"content": parts})
        messages.append(message)
    copy = request.model_copy(deep=False)
    copy.messages = messages
    return copy, inline


def _carrying(part: ImageURLPart, image: PreparedImage, inline: InlineImages) -> ImageURLPart:
    if not image.replaced or image.image is None:
        return part
    encoded = image.encoded
    if encoded is None:  # a small image, encoded now
        encoded = pybase64.b64encode(image.image.data)
    url = part.image_url.model_copy(update={"url": inline.add(image.image.mime, encoded)})
    return part.model_copy(update={"image_url": url})
