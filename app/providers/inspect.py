"""The built-in `inspect` model: answers offline with what the gateway made of the request."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson

from app.config import ModelEntry
from app.images import ImageNeeds
from app.providers.base import (
    ALL_RESPONSE_FORMATS,
    Call,
    Capabilities,
    Event,
    NoOptions,
    ProviderContext,
    Translator,
    parse_options,
)
from app.providers.prompt import flatten_conversation
from app.wire.schemas import (
    ChatCompletion,
    ChatCompletionMessage,
    Choice,
    CompletionUsage,
)


class Inspect(Translator):
    """Reports per image its source, type, size, bytes, hash and the conversions applied; as a
    JSON object when `response_format` asks for JSON (it follows no schema)."""

    capabilities = Capabilities(
        # Image URLs are fetched, as for any upstream that reads bytes, so that it can say
        # what they really are.
        images=ImageNeeds(urls=False),
        needs_api_key=False,
        response_formats=ALL_RESPONSE_FORMATS,
    )

    def __init__(self, entry: ModelEntry, context: ProviderContext) -> None:  # noqa: ARG002
        parse_options(entry, NoOptions)

    @staticmethod
    def describe(call: Call) -> str:
        lines = [f"{len(call.request.messages)} message(s), {len(call.images)} image(s)"]
        lines += [f"image {n}: {image.describe()}" for n, image in enumerate(call.images, 1)]
        lines.append(f"prompt: {len(flatten_conversation(call.request))} characters")
        return "\n".join(lines)

    async def execute(self, call: Call, *, stream: bool) -> AsyncGenerator[Event]:  # noqa: ARG002
        yield self.completion(call)

    @staticmethod
    def describe_json(call: Call) -> str:
        """The same facts as `describe`, as a JSON object."""
        facts = {
            "messages": len(call.request.messages),
            "images": [image.facts() for image in call.images],
            "prompt_characters": len(flatten_conversation(call.request)),
        }
        return orjson.dumps(facts).decode()

    @classmethod
    def answer(cls, call: Call) -> str:
        """The description, as JSON when `response_format` asks for JSON."""
        response_format = call.request.response_format
        wants_json = response_format is not None and response_format.type != "text"
        return cls.describe_json(call) if wants_json else cls.describe(call)

    def completion(self, call: Call) -> ChatCompletion:
        text = self.answer(call)
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
