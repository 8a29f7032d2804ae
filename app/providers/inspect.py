"""The built-in `inspect` model: answers offline with what the gateway made of the request."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from app.config import ModelEntry
from app.prompt import flatten_conversation
from app.providers.base import (
    Call,
    Capabilities,
    Event,
    NoOptions,
    ProviderContext,
    Translator,
    parse_options,
)
from app.schemas import (
    ChatCompletion,
    ChatCompletionMessage,
    Choice,
    CompletionUsage,
)


class Inspect(Translator):
    """Reports per image its source, type, size, bytes, hash and the conversions applied."""

    capabilities = Capabilities(needs_api_key=False)

    def __init__(self, entry: ModelEntry, context: ProviderContext) -> None:  # noqa: ARG002
        parse_options(entry, NoOptions)

    @staticmethod
    def describe(call: Call) -> str:
        lines = [f"{len(call.request.messages)} message(s), {len(call.images)} image(s)"]
        lines += [f"image {n}: {image.describe()}" for n, image in enumerate(call.images, 1)]
        lines.append(f"prompt: {len(flatten_conversation(call.request))} characters")
        return "\n".join(lines)

    async def execute(self, call: Call, *, stream: bool) -> AsyncGenerator[Event]:  # noqa: ARG002
        yield self.answer(call)

    def answer(self, call: Call) -> ChatCompletion:
        text = self.describe(call)
        prompt_tokens = len(flatten_conversation(call.request).split())
        completion_tokens = len(text.split())
        return ChatCompletion(
            model=call.request.model,
            choices=[Choice(index=0, message=ChatCompletionMessage(content=text))],
            usage=CompletionUsage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            ),
        )
