"""The built-in `inspect` model: answers offline with what the gateway made of the request."""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.config import ModelEntry
from app.images import ImageInfo, inspect_data_uri, public_url
from app.providers.base import (
    Capabilities,
    NoOptions,
    ProviderContext,
    chunks_from_completion,
    parse_options,
)
from app.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionRequest,
    Choice,
    CompletionUsage,
)
from app.prompt import flatten_conversation


class Inspect:
    """Reports per image its source, type, size, bytes and hash; useful to try the gateway."""

    name = "inspect"
    capabilities = Capabilities(native_streaming=False, image_urls=True, needs_api_key=False)

    def __init__(self, entry: ModelEntry, context: ProviderContext) -> None:
        parse_options(entry, NoOptions)
        self._images = context.images

    async def describe(self, request: ChatCompletionRequest) -> str:
        parts = request.image_parts()
        lines = [f"{len(request.messages)} message(s), {len(parts)} image(s)"]
        for number, (param, part) in enumerate(parts, start=1):
            url = part.image_url.url
            if url.startswith("data:"):
                info = await inspect_data_uri(url, param, self._images)
                lines.append(f"image {number}: data URI, {_describe(info)}")
            else:
                lines.append(f"image {number}: URL {public_url(url)}, passed on unfetched")
        prompt = flatten_conversation(request)
        lines.append(f"prompt: {len(prompt)} characters")
        return "\n".join(lines)

    async def complete(self, request: ChatCompletionRequest, upstream_model: str) -> ChatCompletion:
        text = await self.describe(request)
        prompt_tokens = len(flatten_conversation(request).split())
        completion_tokens = len(text.split())
        return ChatCompletion(
            model=request.model,
            choices=[Choice(index=0, message=ChatCompletionMessage(content=text))],
            usage=CompletionUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                  total_tokens=prompt_tokens + completion_tokens),
        )

    async def stream(
        self, request: ChatCompletionRequest, upstream_model: str
    ) -> AsyncIterator[ChatCompletionChunk]:
        for chunk in chunks_from_completion(await self.complete(request, upstream_model)):
            yield chunk


def _describe(info: ImageInfo) -> str:
    return (f"{info.mime}, {info.width}×{info.height}, {info.size} bytes, "
            f"sha256 {info.sha256[:12]}")
