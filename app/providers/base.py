"""The provider seam: what every upstream translator offers the gateway, and shared helpers."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from app.config import ConfigError, ImagesConfig, ModelEntry
from app.errors import UnsupportedParameter
from app.images import ImageNeeds, PreparedImage
from app.observe.metrics import Metrics
from app.state import StateBackend
from app.transport import BodyParts
from app.wire.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceDelta,
    ChunkChoice,
    InputAudioPart,
    completion_id,
)


@dataclass(frozen=True)
class Capabilities:
    """What an upstream can take, so the gateway converts requests to fit it."""

    images: ImageNeeds = field(default_factory=ImageNeeds)
    needs_api_key: bool = True
    native_n: bool = False  # honours `n > 1` itself; otherwise the gateway fans out
    # Fields that change the answer and that this upstream honours (others get a 400).
    answer_fields: frozenset[str] = frozenset()
    jobs: bool = False  # answers come from jobs the gateway polls
    lists_models: bool = False  # `list_models()` names what a `prefix/*` route offers
    # `response_format` types it honours; `text` asks for nothing more than any answer.
    response_formats: frozenset[str] = frozenset({"text"})
    audio_input: bool = False  # takes `input_audio` parts (it is sent the request as it came)


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
    # `time.monotonic()` by which this deployment must have answered (its `timeout_s`).
    deadline: float = float("inf")
    # What a provider built for this call and may build again: `n` fanned out makes the same
    # call several times at once, and its upstream body (a large image, say) is built once.
    built: dict[object, bytes | BodyParts] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def once(self, key: object, build: Callable[[], bytes | BodyParts]) -> bytes | BodyParts:
        """`build()`, the first time it is asked for under `key`; the same body after."""
        found = self.built.get(key)
        if found is None:
            found = self.built[key] = build()
        return found


class Accepted:
    """The upstream has taken the request (a job was submitted, a stream opened): a stream
    can start, and the answer follows."""


ACCEPTED = Accepted()
Event = ChatCompletionChunk | ChatCompletion | Accepted


class Provider(Protocol):
    """Translate one ChatCompletionRequest to an upstream API and back. No web types here.

    `execute` is the one door: it yields `ACCEPTED` once the upstream has the request (when
    that comes before the answer), then either the whole answer as one `ChatCompletion` or,
    for a stream from an upstream that streams, its chunks as they come (without a role
    chunk). The gateway builds the other mode, stamps ids and the client's model name, and
    reads it up to its first event while it can still fail over. Raises `GatewayError`s
    only: upstream failures are translated at the upstream seam.
    """

    capabilities: Capabilities

    def execute(self, call: Call, *, stream: bool) -> AsyncGenerator[Event]: ...

    async def list_models(self) -> list[str]:
        """The variants a `prefix/*` route of this provider offers (`capabilities.lists_models`)."""
        ...


class Translator:
    """What providers share: nothing to list unless they say otherwise."""

    async def list_models(self) -> list[str]:
        return []


class StreamingTranslator(Translator, ABC):
    """A provider whose upstream answers whole or streams, as asked: `execute` is its
    `stream` for a stream and its `complete` otherwise."""

    def execute(self, call: Call, *, stream: bool) -> AsyncGenerator[Event]:
        # The stream itself, not relayed through one more generator: each chunk passes
        # through every layer between the upstream and the client.
        return self.stream(call) if stream else self._whole(call)

    async def _whole(self, call: Call) -> AsyncGenerator[Event]:
        yield await self.complete(call)

    @abstractmethod
    async def complete(self, call: Call) -> ChatCompletion: ...

    @abstractmethod
    def stream(self, call: Call) -> AsyncGenerator[Event]: ...


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


# Fields that change what the answer is: refused where a provider lacks them.
ANSWER_FIELDS = ("tools", "tool_choice", "logprobs", "audio", "modalities")
# Every `response_format` type: for upstreams that honour JSON answers, schemas included.
ALL_RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
_DECLARED = frozenset(ChatCompletionRequest.model_fields)


def refuse_unsupported(request: ChatCompletionRequest, capabilities: Capabilities) -> None:
    """400 `unsupported_parameter` for answer-changing fields this provider can't honour."""
    extra = request.model_extra or {}
    for name in ANSWER_FIELDS:
        # A field the model doesn't declare is read from the extras: asking the model for it
        # raises and catches two exceptions inside pydantic, each time.
        value = getattr(request, name) if name in _DECLARED else extra.get(name)
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
    if not capabilities.audio_input:
        _refuse_audio(request)


def _refuse_audio(request: ChatCompletionRequest) -> None:
    """No part a provider can't carry is dropped: audio is refused, naming the part."""
    for i, message in enumerate(request.messages):
        if isinstance(message.content, list):
            for j, part in enumerate(message.content):
                if isinstance(part, InputAudioPart):
                    raise UnsupportedParameter(
                        "input_audio parts are not supported by this model's provider",
                        param=f"messages[{i}].content[{j}]",
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


def chunks_from_completion(completion: ChatCompletion) -> list[ChatCompletionChunk]:
    """A whole answer as a stream: a role chunk, the content per choice, a finish chunk, usage
    (with the answer's `x_gateway` facts, if any)."""

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
    facts = (completion.model_extra or {}).get("x_gateway")
    if facts is not None:  # a job's facts travel with the last chunk, as beside a whole answer
        setattr(usage, "x_gateway", facts)  # noqa: B010 (an extra field)
    chunks.append(usage)
    return chunks
