"""Responses API request wire models, named as in the API reference and the `openai` SDK.

Inbound models allow unknown fields, so a newer SDK never gets a 422.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from app.wire.reading import read_request
from app.wire.shape import RequestShape
from app.wire.validation import validation_error

# Item types this gateway translates; any other item is an `OtherItem`.
ITEM_TYPES = frozenset({"message", "function_call", "function_call_output", "item_reference"})


class _Wire(BaseModel):
    # Each field must be of its JSON type, as OpenAI checks them: no coercion.
    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=True)


class InputText(_Wire):
    type: Literal["input_text"]
    text: str


class OutputText(_Wire):
    type: Literal["output_text"]
    text: str


class Refusal(_Wire):
    type: Literal["refusal"]
    refusal: str


class InputImage(_Wire):
    type: Literal["input_image"]
    image_url: Annotated[str, Field(min_length=1)] | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None


class InputFile(_Wire):
    type: Literal["input_file"]
    filename: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    file_id: str | None = None
    detail: str | None = None  # accepted, and without effect on documents read here


class InputAudio(_Wire):
    type: Literal["input_audio"]


# Either kind of text part (an `input_text` in an assistant message reads as its output).
TEXT_PARTS = (InputText, OutputText)

ContentPart = Annotated[
    InputText | OutputText | Refusal | InputImage | InputFile | InputAudio,
    Field(discriminator="type"),
]


class MessageItem(_Wire):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]
    id: str | None = None


class FunctionCallItem(_Wire):
    type: Literal["function_call"]
    call_id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    arguments: str
    id: str | None = None


class FunctionCallOutputItem(_Wire):
    type: Literal["function_call_output"]
    call_id: Annotated[str, Field(min_length=1)]
    output: str | list[ContentPart]
    id: str | None = None


class ItemReference(_Wire):
    """An earlier response's output item, by its id: the Vercel AI SDK sends its earlier
    assistant output this way while `store` is on."""

    type: Literal["item_reference"] = "item_reference"
    id: Annotated[str, Field(min_length=1)]


class OtherItem(_Wire):
    """An item type the gateway does not translate (reasoning, built-in tool calls, ...)."""

    type: str


def _item_kind(value: object) -> str:
    if isinstance(value, dict):
        # A message may leave its type out, and so may a reference (an id and nothing else).
        default = "item_reference" if "id" in value and "role" not in value else "message"
        kind = value.get("type", default)
    elif isinstance(value, BaseModel):
        kind = getattr(value, "type", "message")
    else:
        return "message"  # not an object at all: the message model says so
    return str(kind) if kind in ITEM_TYPES else "other"


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ItemReference, Tag("item_reference")]
    | Annotated[OtherItem, Tag("other")],
    Discriminator(_item_kind),
]


class FunctionTool(_Wire):
    type: Literal["function"]
    name: Annotated[str, Field(min_length=1)]
    description: str | None = None
    parameters: dict[str, object] | None = None
    strict: bool | None = None


class OtherTool(_Wire):
    """A built-in tool (`web_search`, `file_search`, ...), which no upstream here runs."""

    type: str


def _tool_kind(value: object) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "function" if kind == "function" else "other"


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[OtherTool, Tag("other")],
    Discriminator(_tool_kind),
]


class TextFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    schema_: dict[str, object] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None

    @model_validator(mode="after")
    def _schema_has_name_and_schema(self) -> TextFormat:
        if self.type == "json_schema" and (self.name is None or self.schema_ is None):
            raise ValueError("a json_schema format needs `name` and `schema`")
        return self


class TextConfig(_Wire):
    format: TextFormat | None = None
    verbosity: str | None = None


MetadataValue = Annotated[str, Field(max_length=512)]


class ResponsesRequest(_Wire):
    """`POST /v1/responses`. `reasoning`, `truncation`, `include` and `service_tier` are
    accepted and have no equivalent upstream."""

    model: Annotated[str, Field(min_length=1)]
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    parallel_tool_calls: bool | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, object] | None = None
    text: TextConfig | None = None
    metadata: Annotated[dict[str, MetadataValue], Field(max_length=16)] | None = None
    user: str | None = None
    store: bool | None = None
    previous_response_id: Annotated[str, Field(min_length=1)] | None = None
    stream: bool | None = None
    reasoning: dict[str, object] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    include: list[str] | None = None
    service_tier: str | None = None
    # The rest of what the API documents, declared so that their types are checked.
    max_tool_calls: Annotated[int, Field(ge=1)] | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    stream_options: dict[str, object] | None = None

    @property
    def stores(self) -> bool:
        """Whether the finished response is kept (`store` defaults to true)."""
        return self.store is not False


def parse_request(body: object) -> ResponsesRequest:
    """The request, or 400 `invalid_value` naming the bad field in `param`."""
    try:
        return ResponsesRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


async def read_responses_request(body: bytes | bytearray, shape: RequestShape) -> ResponsesRequest:
    """The request in `body`, its shape within the `requests:` limits; else a 400."""
    return await read_request(body, shape, parse_request)
