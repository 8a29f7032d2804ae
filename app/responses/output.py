"""A finished chat completion as the `response` object, with the request's settings echoed."""

from __future__ import annotations

import time
from collections.abc import Sequence

from app.errors import GatewayError
from app.responses.ids import new_id
from app.responses.objects import (
    IncompleteDetails,
    InputTokensDetails,
    OutputItem,
    OutputTokensDetails,
    Response,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseUsage,
    response_error,
)
from app.responses.payload import INCOMPLETE
from app.responses.schemas import ResponsesRequest
from app.wire.schemas import ChatCompletion, CompletionUsage


def start_response(
    request: ResponsesRequest, *, response_id: str | None = None, created_at: int | None = None
) -> Response:
    """The response as it begins: `in_progress`, no output yet, the request's settings echoed."""
    fields: dict[str, object] = {
        "id": response_id or new_id("resp"),
        "created_at": int(time.time()) if created_at is None else created_at,
        "status": "in_progress",
        "model": request.model,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "previous_response_id": request.previous_response_id,
        "reasoning": request.reasoning,
        "service_tier": request.service_tier,
        "store": request.stores,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "truncation": request.truncation,
        "user": request.user,
        "metadata": request.metadata,
        "tool_choice": request.tool_choice,
        "parallel_tool_calls": request.parallel_tool_calls,
        "tools": [
            tool.model_dump(by_alias=True, exclude_none=True) for tool in request.tools or []
        ],
    }
    if request.text is not None:
        fields["text"] = request.text.model_dump(by_alias=True, exclude_none=True)
    return Response.model_validate({k: v for k, v in fields.items() if v is not None})


def finish_response(
    response: Response,
    output: Sequence[OutputItem],
    finish_reason: str | None,
    usage: CompletionUsage | None,
    x_gateway: object = None,
) -> Response:
    """The response once its answer is whole: `completed`, or `incomplete` with the reason
    when the answer was cut short (`max_output_tokens`); a job provider's `x_gateway` facts
    ride along."""
    reason = INCOMPLETE.get(finish_reason or "")
    status = "incomplete" if reason else "completed"
    items = [item.model_copy(update={"status": status}) for item in output]
    return response.model_copy(
        update={
            "status": status,
            "output": items,
            "incomplete_details": IncompleteDetails.model_validate({"reason": reason})
            if reason
            else None,
            "usage": response_usage(usage),
            **({"x_gateway": x_gateway} if x_gateway is not None else {}),
        }
    )


def fail_response(
    response: Response, output: Sequence[OutputItem], error: GatewayError
) -> Response:
    """The response of a stream that broke off: `failed`, with what was produced so far."""
    items = [item.model_copy(update={"status": "incomplete"}) for item in output]
    return response.model_copy(
        update={"status": "failed", "output": items, "error": response_error(error)}
    )


def to_response(
    completion: ChatCompletion,
    request: ResponsesRequest,
    *,
    response_id: str | None = None,
    created_at: int | None = None,
) -> Response:
    """A finished chat completion as the `response` object (its first choice)."""
    response = start_response(request, response_id=response_id, created_at=created_at)
    choice = completion.choices[0] if completion.choices else None
    text = choice.message.content if choice else None
    calls = (choice.message.model_extra or {}).get("tool_calls") if choice else None
    output = output_items(text or "", calls if isinstance(calls, list) else [])
    x_gateway = (completion.model_extra or {}).get("x_gateway")
    finish_reason = choice.finish_reason if choice else None
    return finish_response(response, output, finish_reason, completion.usage, x_gateway)


def output_items(text: str, tool_calls: Sequence[object]) -> list[OutputItem]:
    """A message item for the text (also when there is nothing else to say), then a
    function_call item per tool call."""
    items: list[OutputItem] = []
    if text or not tool_calls:
        items.append(ResponseOutputMessage(content=[ResponseOutputText(text=text)]))
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(function, dict):
            continue
        items.append(
            ResponseFunctionToolCall(
                call_id=str(call.get("id") or new_id("call")),
                name=str(function.get("name") or ""),
                arguments=str(function.get("arguments") or ""),
            )
        )
    return items


def response_usage(usage: CompletionUsage | None) -> ResponseUsage:
    """Chat's token counts under the Responses names, with the `_details` objects."""
    usage = usage or CompletionUsage()
    extra = usage.model_extra or {}
    return ResponseUsage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
        input_tokens_details=InputTokensDetails(
            cached_tokens=_count(extra.get("prompt_tokens_details"), "cached_tokens")
        ),
        output_tokens_details=OutputTokensDetails(
            reasoning_tokens=_count(extra.get("completion_tokens_details"), "reasoning_tokens")
        ),
    )


def _count(details: object, name: str) -> int:
    value = details.get(name) if isinstance(details, dict) else None
    return value if isinstance(value, int) else 0


def output_message(response: Response) -> dict[str, object] | None:
    """The response's output as one chat assistant message, for the stored conversation."""
    text = response.output_text
    calls = [
        {
            "id": item.call_id,
            "type": "function",
            "function": {"name": item.name, "arguments": item.arguments},
        }
        for item in response.output
        if isinstance(item, ResponseFunctionToolCall)
    ]
    if not text and not calls:
        return None
    message: dict[str, object] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message
