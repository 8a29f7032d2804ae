"""Chat requests carrying image parts, and pipelines to prepare them, for the pipeline tests."""

from __future__ import annotations

from typing import Any

from app.config import ImagesConfig
from app.images import ImagePipeline
from app.images.cache import ImageCache
from app.images.fetch import ImageFetcher
from app.wire.inline import InlineImages
from app.wire.schemas import ChatCompletionRequest, ImageURLPart


def part(url: str, detail: str | None = None) -> dict[str, Any]:
    image_url = {"url": url} if detail is None else {"url": url, "detail": detail}
    return {"type": "image_url", "image_url": image_url}


def request_with(*messages: list[dict[str, Any]]) -> ChatCompletionRequest:
    """User messages, each a text part followed by the given parts: the first image part of
    message i is `messages[i].content[1]`."""
    bodies = [
        {"role": "user", "content": [{"type": "text", "text": "Describe"}, *parts]}
        for parts in messages
    ]
    return ChatCompletionRequest.model_validate({"model": "m", "messages": bodies})


def url_of(request: ChatCompletionRequest, message: int, index: int) -> str:
    content = request.messages[message].content
    assert isinstance(content, list)
    found = content[index]
    assert isinstance(found, ImageURLPart)
    return found.image_url.url


def make_pipeline(
    fetcher: ImageFetcher, *, cache: ImageCache | None = None, **limits: Any
) -> ImagePipeline:
    return ImagePipeline(ImagesConfig(**limits), fetcher, cache or ImageCache())


def sent_url_of(
    upstream: tuple[ChatCompletionRequest, InlineImages | None], message: int, index: int
) -> str:
    """The image URL an upstream body carries for a part of what `with_images` made: a
    stand-in's data URI spelled out."""
    request, inline = upstream
    url = url_of(request, message, index)
    found = inline.get(url) if inline is not None else None
    return url if found is None else found.header + bytes(found.payload).decode("ascii")
