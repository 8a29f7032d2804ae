"""A finished chat completion as the `response` object in plain JSON data, for a non-streamed
answer: the same fields, order and values as the `Response` model dumps, built without
validating models field by field (the request and the completion were validated already)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from app.responses.ids import new_id
from app.responses.schemas import ResponsesRequest
from app.responses.translate import ChatMessage
from app.schemas import ChatCompletion, CompletionUsage

ResponseData = dict[str, object]

# Chat finish reasons that leave an answer unfinished, as Responses names them.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_data(
    completion: ChatCompletion,
    request: ResponsesRequest,
    *,
    response_id: str | None = None,
    created_at: int | None = None,
) -> ResponseData:
    """The `response` object of a finished chat completion (its first choice), with the
    request's settings echoed: `completed`, or `incomplete` with the reason."""
    choice = completion.choices[0] if completion.choices else None
    reason = INCOMPLETE.get(choice.finish_reason or "") if choice else None
    status = "incomplete" if reason else "completed"
    text, calls = "", []
    if choice is not None:
        text = choice.message.content or ""
        found = (choice.message.model_extra or {}).get("tool_calls")
        calls = found if isinstance(found, list) else []
    tools = request.tools or []
    data: ResponseData = {
        "id": response_id or new_id("resp"),
        "object": "response",
        "created_at": int(time.time()) if created_at is None else created_at,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": reason} if reason else None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "model": request.model,
        "output": output_data(text, calls, status),
        "parallel_tool_calls": _default(request.parallel_tool_calls, True),
        "previous_response_id": request.previous_response_id,
        "reasoning": request.reasoning,
        "service_tier": request.service_tier,
        "store": request.stores,
        "temperature": request.temperature,
        "text": _text(request),
        "tool_choice": _default(request.tool_choice, "auto"),
        "tools": [tool.model_dump(by_alias=True, exclude_none=True) for tool in tools],
        "top_p": request.top_p,
        "truncation": _default(request.truncation, "disabled"),
        "usage": usage_data(completion.usage),
        "user": request.user,
        "metadata": _default(request.metadata, {}),
    }
    x_gateway = (completion.model_extra or {}).get("x_gateway")
    if x_gateway is not None:
        data["x_gateway"] = x_gateway
    return data


def output_data(text: str, tool_calls: Sequence[object], status: str) -> list[ResponseData]:
    """A message item for the text (also when there is nothing else to say), then a
    function_call item per tool call."""
    items: list[ResponseData] = []
    if text or not tool_calls:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        items.append(
            {
                "id": new_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": status,
                "content": [part],
            }
        )
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(function, dict):
            continue
        items.append(
            {
                "id": new_id("fc"),
                "type": "function_call",
                "status": status,
                "call_id": str(call.get("id") or new_id("call")),
                "name": str(function.get("name") or ""),
                "arguments": str(function.get("arguments") or ""),
            }
        )
    return items


def usage_data(usage: CompletionUsage | None) -> ResponseData:
    """Chat's token counts under the Responses names, with the `_details` objects."""
    usage = usage or CompletionUsage()
    extra = usage.model_extra or {}
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": _count(extra.get("prompt_tokens_details"), "cached_tokens"),
            "cache_write_tokens": 0,
        },
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": _count(extra.get("completion_tokens_details"), "reasoning_tokens")
        },
        "total_tokens": usage.total_tokens or prompt + completion,
    }


def answer_message(data: ResponseData) -> ChatMessage | None:
    """The response's output as one chat assistant message, for the stored conversation."""
    output = data.get("output")
    items = output if isinstance(output, list) else []
    text = "".join(
        str(part.get("text", ""))
        for item in items
        if item.get("type") == "message"
        for part in item.get("content", ())
    )
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        for item in items
        if item.get("type") == "function_call"
    ]
    if not text and not calls:
        return None
    message: ChatMessage = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _text(request: ResponsesRequest) -> object:
    if request.text is None:
        return {"format": {"type": "text"}}
    return request.text.model_dump(by_alias=True, exclude_none=True)


def _default(value: object, default: object) -> object:
    return default if value is None else value


def _count(details: object, name: str) -> int:
    value = details.get(name) if isinstance(details, dict) else None
    return int(value) if isinstance(value, int) else 0
