"""OpenAI Chat Completions wire models, named as in the API reference and the `openai` SDK.

Inbound models allow unknown fields, so a newer SDK never gets a 422; they travel on to
OpenAI-compatible upstreams untouched.
"""

from __future__ import annotations

import os
import time
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from app.wire.hashed import HashedURI
from app.wire.inline import InlineImages


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Inbound(_Wire):
    """What a client sends: each field must be of its JSON type, as OpenAI checks them
    (`"stream": "yes"` is no boolean, `"n": "2"` no integer)."""

    model_config = ConfigDict(extra="allow", strict=True)


def _hashed_as_it_is(value: object, validate: ValidatorFunctionWrapHandler) -> str:
    """A `HashedURI` stays itself: validating it as `str` would copy it into a plain one."""
    return value if isinstance(value, HashedURI) else validate(value)


class ImageURL(_Inbound):
    url: Annotated[str, Field(min_length=1), WrapValidator(_hashed_as_it_is)]
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(_Inbound):
    type: Literal["text"]
    text: str


class ImageURLPart(_Inbound):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudioPart(_Inbound):
    type: Literal["input_audio"]
    input_audio: dict[str, object]


class File(_Inbound):
    """A document in a chat message: its content (`file_data`: a data URI, bare base64, or an
    http(s) URL) or, for OpenAI's Files API, an id this gateway can't resolve."""

    filename: str | None = None
    file_data: str | None = None
    file_id: str | None = None


class FilePart(_Inbound):
    type: Literal["file"]
    file: File


class RefusalPart(_Inbound):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[
    TextPart | ImageURLPart | InputAudioPart | FilePart | RefusalPart, Field(discriminator="type")
]


class SystemMessage(_Inbound):
    role: Literal["system", "developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Inbound):
    role: Literal["user"]
    content: str | list[ContentPart]
    name: str | None = None


class AssistantMessage(_Inbound):
    role: Literal["assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, object]] | None = None


class ToolMessage(_Inbound):
    role: Literal["tool", "function"]
    content: str | list[TextPart] | None = None
    tool_call_id: str | None = None
    name: str | None = None


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


class StreamOptions(_Inbound):
    include_usage: bool | None = None


class ResponseFormat(_Inbound):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, object] | None = None


class ChatCompletionRequest(_Inbound):
    model: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[Message], Field(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stop: str | list[str] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    seed: int | None = None
    user: str | None = None
    response_format: ResponseFormat | None = None
    tools: list[dict[str, object]] | None = None
    tool_choice: str | dict[str, object] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    # The rest of what the API documents, declared so that their types are checked; each
    # travels on as it came, to upstreams that take it.
    parallel_tool_calls: bool | None = None
    metadata: (
        Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)] | None
    ) = None
    store: bool | None = None
    logit_bias: dict[str, int] | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    modalities: list[str] | None = None
    audio: dict[str, object] | None = None
    prediction: dict[str, object] | None = None
    web_search_options: dict[str, object] | None = None
    function_call: str | dict[str, object] | None = None
    functions: list[dict[str, object]] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None

    @property
    def inline(self) -> InlineImages | None:
        """Large data URIs still in the request body, whose stand-ins image URLs hold."""
        return None

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return value

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def choice_count(self) -> int:
        return self.n or 1

    def json_schema(self) -> object | None:
        """The schema `response_format` asks the answer to follow (`json_object`: any object)."""
        response_format = self.response_format
        if response_format is None or response_format.type == "text":
            return None
        if response_format.type == "json_object":
            return {"type": "object"}
        inner = response_format.json_schema or {}
        return inner.get("schema", inner)

    @property
    def document_pages(self) -> int:
        """How many of the image parts are pages of documents the gateway rendered."""
        return 0

    def file_parts(self) -> list[tuple[str, FilePart]]:
        """Every document part with its `param` path, in order."""
        found = []
        for i, message in enumerate(self.messages):
            if isinstance(message.content, list):
                for j, part in enumerate(message.content):
                    if isinstance(part, FilePart):
                        found.append((f"messages[{i}].content[{j}]", part))
        return found

    def image_parts(self) -> list[tuple[str, ImageURLPart]]:
        """Every image part with its `param` path, in order."""
        found = []
        for i, message in enumerate(self.messages):
            if isinstance(message.content, list):
                for j, part in enumerate(message.content):
                    if isinstance(part, ImageURLPart):
                        found.append((f"messages[{i}].content[{j}].image_url", part))
        return found


class InlineChatRequest(ChatCompletionRequest):
    """A chat request parsed from a body whose large data URIs were left in it: its image
    URLs hold stand-ins for them, read from `inline`. (A private attribute costs every
    validation a call, so requests without such URIs are of the plain class.)"""

    _inline: InlineImages = PrivateAttr()

    @property
    def inline(self) -> InlineImages:
        return self._inline

    @classmethod
    def keeping(cls, payload: object, inline: InlineImages) -> InlineChatRequest:
        request = cls.model_validate(payload)
        request._inline = inline
        return request


# The most tokens one count may say: upstreams' counts are clamped to 0..this.
MAX_TOKEN_COUNT = 2**31 - 1


def token_count(value: object) -> int:
    """An upstream's token count as a count: a whole number from 0 to `MAX_TOKEN_COUNT`
    (below zero, past it, not a number at all: clamped, or 0)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0
    return int(min(max(value, 0), MAX_TOKEN_COUNT))


_TOKEN_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


class CompletionUsage(_Wire):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @model_validator(mode="before")
    @classmethod
    def _counts_within_bounds(cls, data: Any) -> Any:
        """Each count an upstream reports made a count (`token_count`): one look at the
        three, which are nearly always fine already."""
        if not isinstance(data, dict):
            return data
        for name in _TOKEN_COUNTS:
            value = data.get(name, 0)
            if type(value) is not int or not 0 <= value <= MAX_TOKEN_COUNT:
                data = {**data, name: token_count(value)}
        return data


def _is_none(value: object) -> bool:
    return value is None


class ChatCompletionMessage(_Wire):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None
    annotations: list[object] = Field(default_factory=list)


class Choice(_Wire):
    index: int = 0
    message: ChatCompletionMessage
    logprobs: object = None
    finish_reason: str | None = "stop"


def completion_id() -> str:
    return f"chatcmpl-{os.urandom(16).hex()}"


class ChatCompletion(_Wire):
    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: CompletionUsage = Field(default_factory=CompletionUsage)

    @field_validator("usage", mode="before")
    @classmethod
    def _usage_may_be_null(cls, value: Any) -> Any:
        return CompletionUsage() if value is None else value


class ChoiceDelta(_Wire):
    """What a chunk adds to its choice: only what it has (OpenAI sends no `"role": null`)."""

    role: Literal["assistant"] | None = Field(default=None, exclude_if=_is_none)
    content: str | None = Field(default=None, exclude_if=_is_none)


class ChunkChoice(_Wire):
    index: int = 0
    delta: ChoiceDelta = Field(default_factory=ChoiceDelta)
    logprobs: object = None
    finish_reason: str | None = None


class ChatCompletionChunk(_Wire):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    # Only the usage chunk (`stream_options.include_usage`) has one.
    usage: CompletionUsage | None = Field(default=None, exclude_if=_is_none)


class Model(_Wire):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelFamily(_Wire):
    """A `prefix/*` route: any `prefix/<name>` is served, not only the members listed."""

    pattern: str
    owned_by: str
    listed: int  # how many of its members `data` names (those the upstream listed)


class ModelList(_Wire):
    object: Literal["list"] = "list"
    data: list[Model]
