"""Unit-test fixtures: upstream clients that are always closed, and request builders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

from app.config import ImagesConfig
from app.providers.base import ProviderContext
from app.schemas import ChatCompletionRequest


@pytest.fixture
def provider_context() -> Iterator[ProviderContext]:
    """For synchronous tests that build providers but never send anything."""
    client = httpx.AsyncClient()
    try:
        yield ProviderContext(client=client, images=ImagesConfig())
    finally:
        anyio.run(client.aclose)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as upstream_client:
        yield upstream_client


def chat_request(content: Any = "Describe the image.", **fields: Any) -> ChatCompletionRequest:
    """A request for `model` (default "m") with one user message, plus any other fields."""
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": content}]}
    body.update(fields)
    return ChatCompletionRequest.model_validate(body)
