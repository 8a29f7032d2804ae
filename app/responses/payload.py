"""The `response` object and its output items, built as plain JSON data: for a non-streamed
answer, and for a stream as it begins, ends or fails. The same fields, order and values as
the `Response` model describes, built without validating models field by field (the request
and the completion were validated already): this runs on every response."""

from __future__ import annotations

import time
from collections.abc import Sequence

from app.errors import GatewayError, ImageError, ImageFetchFailed, ImageTooLarge, RateLimited
from app.responses.ids import new_id
from app.responses.schemas import FunctionTool, OtherTool, ResponsesRequest, TextConfig
from app.responses.translate import ChatMessage
from app.wire.schemas import ChatCompletion, CompletionUsage

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
        extra = choice.message.model_extra
        found = extra.get("tool_calls") if extra else None
        calls = found if isinstance(found, list) else []
    data = _response(
        request,
        status,
        output_data(text, calls, status),
        usage_data(completion.usage),
        reason,
        response_id,
        created_at,
    )
    x_gateway = (completion.model_extra or {}).get("x_gateway")
    if x_gateway is not None:
        data["x_gateway"] = x_gateway
    return data


def started_data(
    request: ResponsesRequest, *, response_id: str | None = None, created_at: int | None = None
) -> ResponseData:
    """The response as a stream begins: `in_progress`, no output yet, the request's settings
    echoed."""
    return _response(request, "in_progress", [], None, None, response_id, created_at)


def finished_data(
    response: ResponseData,
    output: Sequence[ResponseData],
    finish_reason: str | None,
    usage: CompletionUsage | None,
    x_gateway: object = None,
) -> ResponseData:
    """A streamed response once its answer is whole: `completed`, or `incomplete` with the
    reason when the answer was cut short; a job provider's `x_gateway` facts ride along."""
    reason = INCOMPLETE.get(finish_reason or "")
    status = "incomplete" if reason else "completed"
    data = {
        **response,
        "status": status,
        "incomplete_details": {"reason": reason} if reason else None,
        "output": [{**item, "status": status} for item in output],
        "usage": usage_data(usage),
    }
    if x_gateway is not None:
        data["x_gateway"] = x_gateway
    return data


def failed_data(
    response: ResponseData, output: Sequence[ResponseData], error: GatewayError
) -> ResponseData:
    """A streamed response that broke off: `failed`, with what was produced so far."""
    return {
        **response,
        "status": "failed",
        "error": error_data(error),
        "output": [{**item, "status": "incomplete"} for item in output],
    }


def _response(
    request: ResponsesRequest,
    status: str,
    output: list[ResponseData],
    usage: ResponseData | None,
    reason: str | None,
    response_id: str | None,
    created_at: int | None,
) -> ResponseData:
    # Conditional expressions, not calls of small functions: this runs on every response.
    return {
        "id": response_id or new_id("resp"),
        "object": "response",
        "created_at": int(time.time()) if created_at is None else created_at,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": reason} if reason else None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "model": request.model,
        "output": output,
        "parallel_tool_calls": (
            True if request.parallel_tool_calls is None else request.parallel_tool_calls
        ),
        "previous_response_id": request.previous_response_id,
        "reasoning": request.reasoning,
        "service_tier": request.service_tier,
        "store": request.store is not False,
        "temperature": request.temperature,
        "text": {"format": {"type": "text"}} if request.text is None else _text(request.text),
        "tool_choice": "auto" if request.tool_choice is None else request.tool_choice,
        "tools": _tools(request.tools) if request.tools else [],
        "top_p": request.top_p,
        "truncation": "disabled" if request.truncation is None else request.truncation,
        "usage": usage,
        "user": request.user,
        "metadata": {} if request.metadata is None else request.metadata,
    }


def output_data(text: str, tool_calls: Sequence[object], status: str) -> list[ResponseData]:
    """A message item for the text (also when there is nothing else to say), then a
    function_call item per tool call."""
    items: list[ResponseData] = []
    if text or not tool_calls:
        items.append(message_item(status, [text_part(text)]))
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(function, dict):
            continue
        call_id = str(call.get("id") or new_id("call"))
        name, arguments = str(function.get("name") or ""), str(function.get("arguments") or "")
        items.append(call_item(call_id, name, arguments, status))
    return items


def message_item(status: str, content: list[ResponseData]) -> ResponseData:
    """An assistant message item (a stream opens one with no content yet)."""
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def text_part(text: str) -> ResponseData:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(call_id: str, name: str, arguments: str, status: str) -> ResponseData:
    """A function_call item (a stream opens one before its arguments arrive)."""
    return {
        "id": new_id("fc"),
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def error_data(error: GatewayError) -> ResponseData:
    """A gateway error as a failed response's `error`. `code` is one of the codes OpenAI's
    clients know; the gateway's own code is in `type` (and in the `error` event before)."""
    return {
        "code": _error_code(error),
        "message": error.message,
        "param": error.param,
        "type": error.code,
    }


def _error_code(error: GatewayError) -> str:
    if isinstance(error, RateLimited):
        return "rate_limit_exceeded"
    if isinstance(error, ImageTooLarge):
        return "image_too_large"
    if isinstance(error, ImageFetchFailed):
        return "failed_to_download_image"
    if isinstance(error, ImageError):
        return "invalid_image"
    return "server_error"


def usage_data(usage: CompletionUsage | None) -> ResponseData:
    """Chat's token counts under the Responses names, with the `_details` objects."""
    usage = usage or CompletionUsage()
    extra = usage.model_extra
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    cached = _count(extra.get("prompt_tokens_details"), "cached_tokens") if extra else 0
    reasoning = _count(extra.get("completion_tokens_details"), "reasoning_tokens") if extra else 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.total_tokens or prompt + completion,
    }


def answer_message(data: ResponseData) -> ChatMessage | None:
    """The response's output as one chat assistant message, for the stored conversation."""
    output = data.get("output")
    texts: list[str] = []
    calls: list[dict[str, object]] = []
    for item in output if isinstance(output, list) else ():
        kind = item.get("type")
        if kind == "message":
            texts.extend([str(part.get("text", "")) for part in item.get("content", ())])
        elif kind == "function_call":
            function = {"name": item["name"], "arguments": item["arguments"]}
            calls.append({"id": item["call_id"], "type": "function", "function": function})
    text = "".join(texts)
    if not text and not calls:
        return None
    message: ChatMessage = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _text(text: TextConfig) -> object:
    return text.model_dump(by_alias=True, exclude_none=True)


def _tools(tools: Sequence[FunctionTool | OtherTool]) -> list[object]:
    return [tool.model_dump(by_alias=True, exclude_none=True) for tool in tools]


def _count(details: object, name: str) -> int:
    value = details.get(name) if isinstance(details, dict) else None
    return int(value) if isinstance(value, int) else 0
