"""The built-in `inspect` model: answers offline with what the gateway made of the request."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson

from app.config import ModelEntry
from app.documents import Document, DocumentRequest
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

# What each kind of upstream gets of a document.
DOCUMENTS_GO = (
    "upstreams that take images get, per page, its text (when it has any) and its image; "
    "an entry with `documents: native` gets the PDF itself"
)


def _documents(call: Call) -> tuple[Document, ...]:
    request = call.request
    return request.documents if isinstance(request, DocumentRequest) else ()


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
        documents = _documents(call)
        head = f"{len(call.request.messages)} message(s), {len(call.images)} image(s)"
        if documents:
            pages = sum(len(document.pages) for document in documents)
            head += f", {len(documents)} document(s) of {pages} page(s)"
        lines = [head]
        lines += [f"document {n}: {doc.describe()}" for n, doc in enumerate(documents, 1)]
        if documents:
            lines.append(DOCUMENTS_GO)
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
            "documents": [document.facts() for document in _documents(call)],
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
