"""The provider seam: what every upstream translator offers the gateway, and shared helpers."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from app.config import ConfigError, ImagesConfig, ModelEntry
from app.errors import UnsupportedParameter
from app.images import ImageNeeds, PreparedImage
from app.metrics import Metrics
from app.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceDelta,
    ChunkChoice,
    completion_id,
)
from app.state import StateBackend


@dataclass(frozen=True)
class Capabilities:
    """What an upstream can take, so the gateway converts requests to fit it."""

    images: ImageNeeds = field(default_factory=ImageNeeds)
    needs_api_key: bool = True
    native_n: bool = False  # honours `n > 1` itself; otherwise the gateway fans out
    # Fields that change the answer and that this upstream honours (others get a 400).
    answer_fields: frozenset[str] = frozenset()
    # `response_format` types it honours; `text` asks for nothing more than any answer.
    response_formats: frozenset[str] = frozenset({"text"})


@dataclass(frozen=True)
class ProviderContext:
    """What every provider is built with besides its own model entry."""

    transport: httpx.AsyncBaseTransport  # shared by every upstream call
    images: ImagesConfig
    state: StateBackend
    metrics: Metrics = field(default_factory=Metrics)


@dataclass(frozen=True)
class Call:
    """One upstream call: the request with its images already in the form the upstream takes,
    those images, and the model name the upstream is asked for. The reply's `model` is the
    client's id, `request.model`."""

    request: ChatCompletionRequest
    upstream_model: str
    images: list[PreparedImage] = field(default_factory=list)
    variant: str | None = None  # what a `prefix/*` route's `*` matched
    deadline: float | None = None  # `time.monotonic()` by which the whole request must end

    def remaining_s(self, default: float) -> float:
        """Time left before the deadline (`default` when there is none)."""
        return default if self.deadline is None else self.deadline - time.monotonic()


class Provider(Protocol):
    """Translate one ChatCompletionRequest to an upstream API and back. No FastAPI types here.

    `complete` returns the whole answer; `stream` yields chunks, the role chunk first, and is
    called eagerly up to its first chunk so that failures before it become HTTP statuses.
    Both raise `GatewayError`s only: upstream failures are translated at the upstream seam.
    """

    capabilities: Capabilities

    async def complete(self, call: Call) -> ChatCompletion: ...

    def stream(self, call: Call) -> AsyncGenerator[ChatCompletionChunk]: ...


class ProviderType(Protocol):
    """A provider class: its capabilities are known before any instance exists."""

    capabilities: Capabilities

    def __call__(self, entry: ModelEntry, context: ProviderContext) -> Provider: ...


class NoOptions(BaseModel):
    """Providers that take no `options` refuse any key in it."""

    model_config = ConfigDict(extra="forbid")


OptionsT = TypeVar("OptionsT", bound=BaseModel)


def parse_options(entry: ModelEntry, model: type[OptionsT]) -> OptionsT:
    try:
        return model.model_validate(entry.options)
    except ValidationError as exc:
        bad = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise ConfigError(
            f"model {entry.name!r}: bad options for provider {entry.provider}: {bad}"
        ) from None


# Fields that change what the answer is (SPEC §4): refused where a provider lacks them.
ANSWER_FIELDS = ("tools", "tool_choice", "logprobs", "audio", "modalities")
# Every `response_format` type: for upstreams that honour JSON answers, schemas included.
ALL_RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})


def refuse_unsupported(request: ChatCompletionRequest, capabilities: Capabilities) -> None:
    """400 `unsupported_parameter` for answer-changing fields this provider can't honour."""
    for name in ANSWER_FIELDS:
        value = getattr(request, name, None)
        if name == "modalities" and value == ["text"]:
            continue
        if value not in (None, False, []) and name not in capabilities.answer_fields:
            raise UnsupportedParameter(
                f"{name!r} is not supported by this model's provider", param=name
            )
    response_format = request.response_format
    if response_format is not None and response_format.type not in capabilities.response_formats:
        raise UnsupportedParameter(
            f"response_format {response_format.type!r} is not supported by this model's provider",
            param="response_format",
        )


def role_chunk(
    model: str, count: int = 1, *, chunk_id: str | None = None, created: int | None = None
) -> ChatCompletionChunk:
    """A stream's first chunk: the assistant role for each of `count` choices."""
    return ChatCompletionChunk(
        id=chunk_id or completion_id(),
        created=created or int(time.time()),
        model=model,
        choices=[
            ChunkChoice(index=i, delta=ChoiceDelta(role="assistant", content=""))
            for i in range(count)
        ],
    )


async def stream_when_ready(
    model: str, answer: Callable[[], Awaitable[ChatCompletion]]
) -> AsyncGenerator[ChatCompletionChunk]:
    """A stream for an upstream that answers whole: the role chunk at once (the response
    sends keepalives while `answer()` is awaited), then the answer as chunks."""
    role = role_chunk(model)
    yield role
    completion = await answer()
    completion.id, completion.created = role.id, role.created
    for chunk in chunks_from_completion(completion)[1:]:
        yield chunk


def chunks_from_completion(completion: ChatCompletion) -> list[ChatCompletionChunk]:
    """A whole answer as a stream: a role chunk, the content per choice, a finish chunk, usage."""

    def chunk(choices: list[ChunkChoice]) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=completion.id, created=completion.created, model=completion.model, choices=choices
        )

    chunks = [
        role_chunk(
            completion.model,
            len(completion.choices),
            chunk_id=completion.id,
            created=completion.created,
        )
    ]
    for choice in completion.choices:
        tool_calls = (choice.message.model_extra or {}).get("tool_calls")
        if choice.message.content or tool_calls:
            fields: dict[str, object] = {"content": choice.message.content}
            if isinstance(tool_calls, list):  # streamed tool calls carry their position
                fields["tool_calls"] = [{**call, "index": i} for i, call in enumerate(tool_calls)]
            delta = ChoiceDelta.model_validate(fields)
            chunks.append(chunk([ChunkChoice(index=choice.index, delta=delta)]))
    finish = [
        ChunkChoice(index=choice.index, finish_reason=choice.finish_reason or "stop")
        for choice in completion.choices
    ]
    chunks.append(chunk(finish))
    usage = chunk([])
    usage.usage = completion.usage
    chunks.append(usage)
    return chunks
