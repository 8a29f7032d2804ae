"""Documents in requests (PDFs): read, checked, and rendered into page images and text for
upstreams that take images, in render processes of their own."""

from __future__ import annotations

from app.documents.pipeline import Document, DocumentPipeline, DocumentRequest

__all__ = ["Document", "DocumentPipeline", "DocumentRequest"]
