"""One image from its bytes to what its upstream takes: identified, checked, converted if need
be, on worker threads admitted by the memory each step takes (`Conversions`)."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable

from app.config import ImagesConfig
from app.errors import ImageError
from app.images.admission import Conversions
from app.images.cache import ImageCache
from app.images.complete import ImageEnd
from app.images.process import (
    Identity,
    Limits,
    Pending,
    ProcessedImage,
    Target,
    convert_image,
    digest,
    identify_unchanged,
    open_image,
)
from app.observe.record import current_record

# Reads a data URI a window at a time; the probe decides from its first bytes whether to go on,
# and the second callable sees every window.
Scan = Callable[
    [Callable[[bytes], Identity | None], Callable[[bytes], None]],
    tuple[Identity, int, str] | None,
]
Found = tuple[ProcessedImage | Pending, int]


class Converter:
    """Each image in two steps on worker threads. The first reads its bytes (decoding a data
    URI, say), hashes them and opens the image from its header: enough for an image that goes
    as it is, and for one to convert, enough to know what decoding it will hold. The second,
    admitted by that, decodes and converts it. Both steps of one client's images take turns
    with other clients' (see `Conversions`)."""

    def __init__(self, limits: ImagesConfig, cache: ImageCache) -> None:
        self._limits = limits
        self._decoding = Limits(
            limits.max_image_pixels,
            limits.max_jpeg_scans,
            limits.max_decode_bytes,
            limits.keep_metadata,
        )
        self._cache = cache
        self.conversions = Conversions(
            os.cpu_count() or 2, limits.max_decode_bytes, limits.decode_share
        )

    async def process(
        self,
        load: Callable[[], bytes],
        target: Target,
        param: str,
        *,
        load_bytes: int = 0,
        scan: Scan | None = None,
        uri: str = "",
    ) -> tuple[ProcessedImage, int]:
        """`load` the bytes (holding `load_bytes` meanwhile), identify and convert them: the
        event loop never touches a multi-MB buffer. The image, and its size as it came.

        With `scan` (a data URI whose upstream takes it as it is), the image is first read a
        window at a time. When its first bytes show it needs no conversion and `uri` already
        names its real type, its bytes are never held whole; otherwise the scan stops there."""
        client = current_record().client
        try:
            found, size = await self.conversions.run(
                client, load_bytes, lambda _: self._first_look(load, target, scan, uri)
            )
            if isinstance(found, Pending):
                found = await self._converted(client, found)
        except ImageError as exc:
            raise type(exc)(exc.message, param=param) from None
        return found, size

    def _first_look(
        self, load: Callable[[], bytes], target: Target, scan: Scan | None, uri: str
    ) -> Found:
        if scan is not None and (unchanged := self._unchanged(target, scan, uri)) is not None:
            return unchanged
        data = load()
        sha256 = digest(data)
        key = (sha256, target)
        cached = self._cache.get(key)
        if cached is not None:
            if not cached.converted:
                cached = dataclasses.replace(cached, data=data)
            return cached, len(data)
        found = open_image(data, target, self._decoding, sha256=sha256)
        if isinstance(found, ProcessedImage):  # goes as it is (but for its metadata, maybe)
            self._cache.put(key, found if found.converted else found.without_data())
        return found, len(data)

    def _unchanged(self, target: Target, scan: Scan, uri: str) -> Found | None:
        def as_it_is(head: bytes) -> Identity | None:
            found = identify_unchanged(head, target, max_pixels=self._limits.max_image_pixels)
            return found if found and uri.startswith(f"data:{found.mime};base64,") else None

        end = ImageEnd()
        scanned = scan(as_it_is, end.feed)
        if scanned is None:
            return None
        end.check()  # no decoder sees these bytes before the upstream does
        if end.metadata and not self._limits.keep_metadata:
            return None  # read whole, so that it goes without
        found, size, sha256 = scanned
        image = ProcessedImage(b"", found.mime, found.width, found.height, sha256, size=size)
        self._cache.put((sha256, target), image)
        return image, size

    async def _converted(self, client: str, pending: Pending) -> ProcessedImage:
        """Decode and convert once the memory it takes is there. (An image never converted, its
        caller gone first, holds nothing but its bytes: it goes with them.)"""

        key = (pending.sha256, pending.target)

        def convert(stop: threading.Event) -> ProcessedImage:
            # The same image may have been converted while this one waited its turn.
            image = self._cache.peek(key) or convert_image(pending, stop)
            self._cache.put(key, image)
            return image

        return await self.conversions.run(client, pending.cost, convert)
