"""The render processes: documents are read and rendered away from the gateway's own process,
one at a time in each, and a render that is no longer wanted stops at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing

from pebble import ProcessExpired, ProcessPool

from app.config import DocumentsConfig
from app.documents.render import (
    RenderedPage,
    RenderSettings,
    UnreadableDocument,
    render_document,
    start_render_process,
)

# Render processes are forked from a small server process that has loaded PDFium once, not
# from the gateway's process with its threads and event loop.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["app.documents.render"])


class RenderPool:
    """`documents.render_processes` processes, started on first use, each capped at
    `documents.max_render_memory_bytes`.

    A render whose caller is cancelled (its client left, its deadline passed) or that takes
    longer than `documents.timeout_s` ends with its process, which is replaced: PDFium can't
    be interrupted otherwise. A process that dies (out of its memory, or a crash in PDFium)
    fails that document alone."""

    def __init__(self, config: DocumentsConfig) -> None:
        self._config = config
        self._pool: ProcessPool | None = None

    async def render(
        self, data: bytes, settings: RenderSettings, max_images: int, max_text_chars: int
    ) -> list[RenderedPage]:
        """`render_document`'s pages, in a render process."""
        future = self._processes().schedule(
            render_document,
            args=(data, settings, max_images, max_text_chars),
            timeout=self._config.timeout_s,
        )
        try:
            pages: list[RenderedPage] = await asyncio.wrap_future(future)
        except concurrent.futures.TimeoutError:
            raise UnreadableDocument(
                f"the document took longer than {self._config.timeout_s:g} s to read "
                "(documents.timeout_s)"
            ) from None
        except ProcessExpired:
            raise UnreadableDocument(
                "the document could not be rendered within the memory a document may use"
            ) from None
        return pages

    def close(self) -> None:
        """Stop the processes, and what they were rendering."""
        if self._pool is not None:
            self._pool.stop()  # type: ignore[no-untyped-call]
            self._pool.join(timeout=5)
            self._pool = None

    def _processes(self) -> ProcessPool:
        if self._pool is None:
            self._pool = ProcessPool(
                max_workers=self._config.render_processes,
                initializer=start_render_process,
                initargs=(self._config.max_render_memory_bytes,),
                context=_CONTEXT,
            )
        return self._pool
