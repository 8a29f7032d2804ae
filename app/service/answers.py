"""A provider's events as either mode: one whole completion, or a stream of chunks, under the
gateway's own id and the client's model name."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from app.errors import UpstreamError
from app.providers.base import Event, chunks_from_completion, role_chunk
from app.wire.schemas import ChatCompletion, ChatCompletionChunk, CompletionUsage, completion_id

ID_PREFIX = "chatcmpl-"


@dataclass
class Stamp:
    """What every completion and chunk of one answer carries, whatever the upstream said."""

    model: str
    id: str = field(default_factory=completion_id)
    created: int = field(default_factory=lambda: int(time.time()))


def stamped(completion: ChatCompletion, model: str) -> ChatCompletion:
    """The completion under the client's model name, with an OpenAI-style id (an upstream id
    of another form is kept in `x_gateway.upstream_id`)."""
    completion.model = model
    if not completion.id.startswith(ID_PREFIX):
        extension = (completion.model_extra or {}).get("x_gateway")
        facts = dict(extension) if isinstance(extension, dict) else {}
        facts["upstream_id"] = completion.id
        completion.id = completion_id()
        setattr(completion, "x_gateway", facts)  # noqa: B010 (an extra field)
    return completion


async def whole_answer(events: AsyncGenerator[Event], model: str) -> ChatCompletion:
    """The completion a provider's events end with."""
    try:
        async for event in events:
            if isinstance(event, ChatCompletion):
                return stamped(event, model)
            if isinstance(event, ChatCompletionChunk):
                raise UpstreamError("the upstream streamed an answer that was asked for whole")
    finally:
        await events.aclose()
    raise UpstreamError("the upstream ended without an answer")


async def stream_of(
    events: AsyncGenerator[Event], stamp: Stamp, choices: int
) -> AsyncGenerator[ChatCompletionChunk]:
    """A provider's events as a stream: the role chunk as soon as the upstream has accepted
    (or answered), then its chunks, or its whole answer as chunks."""
    started = False
    try:
        async for event in events:
            if not started and not isinstance(event, ChatCompletion):
                started = True
                yield role_chunk(stamp.model, choices, chunk_id=stamp.id, created=stamp.created)
            if isinstance(event, ChatCompletionChunk):
                event.id, event.created, event.model = stamp.id, stamp.created, stamp.model
                yield event
            elif isinstance(event, ChatCompletion):
                completion = stamped(event, stamp.model)
                completion.id, completion.created = stamp.id, stamp.created
                chunks = chunks_from_completion(completion)
                for chunk in chunks[1:] if started else chunks:
                    yield chunk
                started = True
    finally:
        await events.aclose()


async def replay(chunks: list[ChatCompletionChunk]) -> AsyncGenerator[ChatCompletionChunk]:
    for chunk in chunks:
        yield chunk


def merge_choices(completions: list[ChatCompletion]) -> ChatCompletion:
    """Parallel single answers as one completion with choices indexed 0..n-1."""
    merged = completions[0].model_copy(deep=True)
    merged.choices = []
    usage = CompletionUsage()
    for index, completion in enumerate(completions):
        merged.choices.append(completion.choices[0].model_copy(update={"index": index}))
        usage.prompt_tokens += completion.usage.prompt_tokens
        usage.completion_tokens += completion.usage.completion_tokens
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
    merged.usage = usage
    return merged
