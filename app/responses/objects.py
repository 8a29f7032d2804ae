"""The `response` object and its output items, named as in the API reference and the `openai` SDK.

The wire models describe it (in the OpenAPI description); `app/responses/payload.py` builds it
as plain data, every field in this order and serialized whole (`None` as `null`), as OpenAI
does. Unknown fields ride along, which is how a job provider's `x_gateway` facts reach the
client.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.responses.ids import new_id

ItemStatus = Literal["in_progress", "completed", "incomplete"]
ResponseStatus = Literal["completed", "failed", "in_progress", "incomplete"]
JSONObject = dict[str, object]  # `object` is a field name inside `Response`
_PLAIN_TEXT: JSONObject = {"format": {"type": "text"}}


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ResponseOutputText(_Out):
    type: Literal["output_text"] = "output_text"
    text: str = ""
    annotations: list[dict[str, object]] = Field(default_factory=list)
    logprobs: list[dict[str, object]] = Field(default_factory=list)


class ResponseOutputMessage(_Out):
    id: str = Field(default_factory=lambda: new_id("msg"))
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    status: ItemStatus = "in_progress"
    content: list[ResponseOutputText] = Field(default_factory=list)


class ResponseFunctionToolCall(_Out):
    id: str = Field(default_factory=lambda: new_id("fc"))
    type: Literal["function_call"] = "function_call"
    status: ItemStatus = "in_progress"
    call_id: str
    name: str
    arguments: str = ""


OutputItem = Annotated[
    ResponseOutputMessage | ResponseFunctionToolCall, Field(discriminator="type")
]


class InputTokensDetails(_Out):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(_Out):
    reasoning_tokens: int = 0


class ResponseUsage(_Out):
    input_tokens: int = 0
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int = 0
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int = 0


class IncompleteDetails(_Out):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseError(_Out):
    """Why a response failed. `code` is one of the codes OpenAI's clients know; the gateway's
    own code is in the `error` event sent just before, and in `type`."""

    code: str
    message: str
    param: str | None = None
    type: str | None = None


class Response(_Out):
    id: str = Field(default_factory=lambda: new_id("resp"))
    object: Literal["response"] = "response"
    created_at: int
    status: ResponseStatus
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputItem] = Field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    reasoning: JSONObject | None = None
    service_tier: str | None = None
    store: bool = True
    temperature: float | None = None
    text: JSONObject = Field(default_factory=lambda: dict(_PLAIN_TEXT))
    tool_choice: str | JSONObject = "auto"
    tools: list[JSONObject] = Field(default_factory=list)
    top_p: float | None = None
    truncation: str = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class DeletedResponse(_Out):
    id: str
    object: Literal["response"] = "response"
    deleted: Literal[True] = True
