"""Unit-test fixtures: upstream clients and image pipelines that are always closed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

from app.config import DocumentsConfig, ImagesConfig, RequestsConfig
from app.documents import DocumentPipeline
from app.images import ImagePipeline
from app.images.cache import ImageCache
from app.images.fetch import ImageFetcher
from app.providers.base import ProviderContext
from app.state import MemoryState
from app.wire.schemas import ChatCompletionRequest
from tests.unit.backends import backend, redis_server

__all__ = ["backend", "redis_server"]  # fixtures, for every unit test


@pytest.fixture(scope="session")
def provider_context() -> Iterator[ProviderContext]:
    """For synchronous tests that build providers but never send anything through them."""
    transport = httpx.AsyncHTTPTransport()
    try:
        yield ProviderContext(transport, ImagesConfig(), MemoryState())
    finally:
        anyio.run(transport.aclose)


@pytest.fixture
async def transport() -> AsyncIterator[httpx.AsyncBaseTransport]:
    """An upstream transport whose traffic respx intercepts."""
    async with httpx.AsyncHTTPTransport() as upstream_transport:
        yield upstream_transport


async def no_dns(host: str, port: int) -> list[str]:
    raise OSError(f"unit tests resolve no names ({host}:{port})")


@pytest.fixture
async def unreachable_fetcher() -> AsyncIterator[ImageFetcher]:
    """A fetcher that cannot reach any host."""
    fetcher = ImageFetcher(
        timeout_s=1, max_bytes=100_000, allow_private_networks=False, resolver=no_dns
    )
    try:
        yield fetcher
    finally:
        await fetcher.aclose()


@pytest.fixture
def image_pipeline(unreachable_fetcher: ImageFetcher) -> ImagePipeline:
    """A pipeline with small limits whose fetcher cannot reach any host."""
    limits = ImagesConfig(max_image_bytes=100_000, max_image_pixels=1_000_000)
    return ImagePipeline(limits, unreachable_fetcher, ImageCache())


@pytest.fixture
def document_pipeline(unreachable_fetcher: ImageFetcher) -> Iterator[DocumentPipeline]:
    """A document pipeline with the default limits whose fetcher cannot reach any host."""
    documents = DocumentPipeline(DocumentsConfig(), RequestsConfig(), unreachable_fetcher)
    try:
        yield documents
    finally:
        documents.close()


def chat_request(content: Any = "Describe the image.", **fields: Any) -> ChatCompletionRequest:
    """A request for `model` (default "m") with one user message, plus any other fields."""
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": content}]}
    body.update(fields)
    return ChatCompletionRequest.model_validate(body)
