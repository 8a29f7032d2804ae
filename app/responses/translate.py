"""A Responses request as the internal chat request: the conversation, tools and settings.

Pure functions. What no upstream behind the gateway can take (file ids, audio, built-in tools)
is refused with 400 `unsupported_parameter` and a `param` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from app.errors import InvalidRequest, ItemNotFound, UnsupportedParameter
from app.responses.schemas import (
    TEXT_PARTS,
    ContentPart,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    InputFile,
    InputImage,
    ItemReference,
    MessageItem,
    OtherItem,
    Refusal,
    ResponsesRequest,
)
from app.wire.schemas import ChatCompletionRequest
from app.wire.validation import validation_error

ChatMessage = dict[str, object]
# Where each chat message of a turn came from in `input`: one `param`, or one per part.
Origins = list[str | list[str]]

# Items that carry no input for the next answer: a reasoning model's thoughts.
_DROPPED_ITEMS = frozenset({"reasoning"})
# Request fields that ask for a service no upstream behind the gateway offers: running in the
# background to be polled, a stored prompt template, a stored conversation.
_REFUSED_FIELDS = ("background", "prompt", "conversation")


def to_chat_request(
    request: ResponsesRequest,
    history: Sequence[ChatMessage] = (),
    turn: Sequence[ChatMessage] | None = None,
) -> ChatCompletionRequest:
    """The chat request the upstream is asked: `instructions` as the first system message,
    then the stored conversation of `previous_response_id` (`history`), then `input` (`turn`,
    when the caller has it already as `input_messages(request)`)."""
    extra = request.model_extra
    if extra:
        _refuse_services(extra)
    messages: list[ChatMessage] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    messages.extend(history)
    new = input_messages(request) if turn is None else turn
    if not new and not history:
        raise InvalidRequest("`input` must hold at least one item", param="input")
    messages.extend(new)
    body: dict[str, object] = {"model": request.model, "messages": messages}
    body.update(_settings(request))
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


def _refuse_services(extra: dict[str, object]) -> None:
    for name in _REFUSED_FIELDS:
        if extra.get(name) not in (None, False):
            raise UnsupportedParameter(f"{name!r} is not supported by this gateway", param=name)


def _settings(request: ResponsesRequest) -> dict[str, object]:
    values: dict[str, object] = {
        "max_completion_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "user": request.user,
        "metadata": request.metadata,
    }
    settings = {name: value for name, value in values.items() if value is not None}
    # Most requests set none of these: their translations are not even called then.
    if request.tools:
        settings["tools"] = chat_tools(request)
    if request.tool_choice is not None:
        settings["tool_choice"] = chat_tool_choice(request)
    if request.text is not None and (chat_format := response_format(request)) is not None:
        settings["response_format"] = chat_format
    if request.stream:
        settings["stream"] = True
        settings["stream_options"] = {"include_usage": True}
    # Chat APIs refuse `parallel_tool_calls` without tools.
    if request.tools and request.parallel_tool_calls is not None:
        settings["parallel_tool_calls"] = request.parallel_tool_calls
    return settings


def input_messages(request: ResponsesRequest, origins: Origins | None = None) -> list[ChatMessage]:
    """`input` as chat messages: what a stored conversation keeps of this turn. `origins`, if
    given, gets the `param` of the input each message came from (`input`, `input[2]`; for the
    message of the files tools returned, one per part)."""
    if request.input is None:
        return []
    if isinstance(request.input, str):
        if origins is not None:
            origins.append("input")
        return [{"role": "user", "content": request.input}]
    messages: list[ChatMessage] = []
    # Images and documents that tools returned, given to the model after the tool messages
    # (chat's tool messages hold text only, and nothing may come between them).
    attached: list[dict[str, object]] = []
    attached_from: list[str] = []
    for i, item in enumerate(request.input):
        if attached and not isinstance(item, FunctionCallOutputItem):
            messages.append({"role": "user", "content": attached})
            attached = []
            if origins is not None:
                origins.append(attached_from)
                attached_from = []
        if isinstance(item, MessageItem):
            messages.append(_message(item, i))
        elif isinstance(item, FunctionCallItem):
            _add_tool_call(messages, item)
        elif isinstance(item, FunctionCallOutputItem):
            messages.append(_tool_message(item, i, attached))
            if origins is not None:
                attached_from.extend(_attached_params(item, i))
        elif isinstance(item, ItemReference):  # the store expands those it has
            raise ItemNotFound(f"Item with id {item.id[:100]!r} not found.", param=f"input[{i}]")
        elif isinstance(item, OtherItem) and item.type not in _DROPPED_ITEMS:
            raise UnsupportedParameter(
                f"input items of type {item.type!r} are not supported", param=f"input[{i}]"
            )
        if origins is not None:
            origins.extend([f"input[{i}]"] * (len(messages) - len(origins)))
    if attached:
        messages.append({"role": "user", "content": attached})
        if origins is not None:
            origins.append(attached_from)
    return messages


def _attached_params(item: FunctionCallOutputItem, i: int) -> list[str]:
    """Where each part `_tool_message` attaches for `item` came from: the line naming the call
    (the output), then each image or document."""
    files = [
        f"input[{i}].output[{j}]"
        for j, part in enumerate(item.output if isinstance(item.output, list) else ())
        if isinstance(part, InputImage | InputFile)
    ]
    return [f"input[{i}].output", *files] if files else []


def _message(item: MessageItem, i: int) -> ChatMessage:
    content = item.content
    if isinstance(content, str):
        return {"role": item.role, "content": content}
    if item.role == "user":
        parts = [_user_part(part, i, j) for j, part in enumerate(content)]
        return {"role": "user", "content": parts}
    text = "".join([_text(part, i, "content", j) for j, part in enumerate(content)])
    return {"role": item.role, "content": text}


def _user_part(part: ContentPart, i: int, j: int, field: str = "content") -> dict[str, object]:
    if isinstance(part, InputImage):
        return {"type": "image_url", "image_url": _image_url(part, i, j, field)}
    if isinstance(part, InputFile):
        return {"type": "file", "file": _file(part, i, j, field)}
    return {"type": "text", "text": _text(part, i, field, j)}


def _file(part: InputFile, i: int, j: int, field: str) -> dict[str, object]:
    """A document as chat's `file` part takes it: its data, or the URL to fetch it from."""
    data = part.file_data or part.file_url
    if data is None:
        where = _where(i, field, j)
        if part.file_id is not None:
            raise UnsupportedParameter(
                "files by `file_id` are not supported: this gateway serves no Files API; send "
                "the file's content in `file_data` (or its URL in `file_url`)",
                param=where,
            )
        raise InvalidRequest("an input_file needs `file_data` or `file_url`", param=where)
    file: dict[str, object] = {"file_data": data}
    if part.filename is not None:
        file["filename"] = part.filename
    return file


def _image_url(part: InputImage, i: int, j: int, field: str = "content") -> dict[str, object]:
    if part.image_url is None:
        where = _where(i, field, j)
        if part.file_id is not None:
            raise UnsupportedParameter(
                "images by `file_id` are not supported; send `image_url` (a URL or a data URI)",
                param=where,
            )
        raise InvalidRequest("an input_image needs `image_url`", param=f"{where}.image_url")
    url: dict[str, object] = {"url": part.image_url}
    if part.detail is not None:
        url["detail"] = "high" if part.detail == "original" else part.detail
    return url


def _text(part: ContentPart, i: int, field: str, j: int) -> str:
    if isinstance(part, TEXT_PARTS):
        return part.text
    if isinstance(part, Refusal):
        return part.refusal
    if isinstance(part, InputImage | InputFile):
        raise InvalidRequest(
            "images and files are only accepted in user messages and tool outputs",
            param=_where(i, field, j),
        )
    raise UnsupportedParameter(
        f"content parts of type {part.type!r} are not supported", param=_where(i, field, j)
    )


def _where(i: int, field: str, j: int) -> str:
    """The `param` naming part `j` of `input[i]`: made only when an error needs it."""
    return f"input[{i}].{field}[{j}]"


def _add_tool_call(messages: list[ChatMessage], item: FunctionCallItem) -> None:
    """A function call joins the assistant message just before it, as chat carries them."""
    call = {
        "id": item.call_id,
        "type": "function",
        "function": {"name": item.name, "arguments": item.arguments},
    }
    last = messages[-1] if messages else None
    if last is None or last.get("role") != "assistant":
        last = {"role": "assistant", "content": None}
        messages.append(last)
    calls = last.setdefault("tool_calls", [])
    assert isinstance(calls, list)
    calls.append(call)


def _tool_message(
    item: FunctionCallOutputItem, i: int, attached: list[dict[str, object]]
) -> ChatMessage:
    """The tool's output as a tool message; the images and documents in it join `attached`,
    after a line saying which call they came from."""
    if isinstance(item.output, str):
        return {"role": "tool", "tool_call_id": item.call_id, "content": item.output}
    texts: list[str] = []
    files: list[dict[str, object]] = []
    for j, part in enumerate(item.output):
        if isinstance(part, InputImage | InputFile):
            files.append(_user_part(part, i, j, "output"))
        else:
            texts.append(_text(part, i, "output", j))
    if files:
        intro = f"The output of tool call {item.call_id} came with these files:"
        attached.extend([{"type": "text", "text": intro}, *files])
    output = "".join(texts) or f"(the output is the {len(files)} file(s) that follow)"
    return {"role": "tool", "tool_call_id": item.call_id, "content": output}


def chat_tools(request: ResponsesRequest) -> list[dict[str, object]] | None:
    """Flat function tools in chat's nested form; built-in tools are refused."""
    if not request.tools:
        return None
    tools: list[dict[str, object]] = []
    for i, tool in enumerate(request.tools):
        if not isinstance(tool, FunctionTool):
            raise UnsupportedParameter(
                f"built-in tools ({tool.type!r}) are not supported; use function tools",
                param=f"tools[{i}]",
            )
        function = tool.model_dump(include={"name", "description", "parameters", "strict"})
        tools.append({"type": "function", "function": _without_none(function)})
    return tools


def chat_tool_choice(request: ResponsesRequest) -> str | dict[str, object] | None:
    choice = request.tool_choice
    if choice is None or isinstance(choice, str):
        return choice
    name = choice.get("name")
    if choice.get("type") == "function" and isinstance(name, str) and name:
        return {"type": "function", "function": {"name": name}}
    raise UnsupportedParameter(
        f"tool_choice of type {choice.get('type')!r} is not supported", param="tool_choice"
    )


def response_format(request: ResponsesRequest) -> dict[str, object] | None:
    """`text.format` as chat's `response_format` (`text` is the default and sends nothing)."""
    text_format = request.text.format if request.text else None
    if text_format is None or text_format.type == "text":
        return None
    if text_format.type == "json_object":
        return {"type": "json_object"}
    schema: dict[str, object] = {
        "name": text_format.name,
        "schema": text_format.schema_,
        "description": text_format.description,
        "strict": text_format.strict,
    }
    return {"type": "json_schema", "json_schema": _without_none(schema)}


def _without_none(fields: dict[str, object]) -> dict[str, object]:
    return {name: value for name, value in fields.items() if value is not None}
