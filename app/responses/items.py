"""A request's `input` as the items `GET /v1/responses/{id}/input_items` lists, and their pages."""

from __future__ import annotations

from collections.abc import Sequence

from app.errors import InvalidRequest
from app.responses.ids import new_id
from app.responses.schemas import (
    TEXT_PARTS,
    ContentPart,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputImage,
    MessageItem,
    Refusal,
    ResponsesRequest,
)

Item = dict[str, object]
MAX_PAGE = 100
DEFAULT_PAGE = 20


def input_items(request: ResponsesRequest) -> list[Item]:
    """Each input item as OpenAI lists it: with an id, a status, and content as parts."""
    if request.input is None:
        return []
    if isinstance(request.input, str):
        return [_message_item("user", [{"type": "input_text", "text": request.input}])]
    items: list[Item] = []
    for item in request.input:
        if isinstance(item, MessageItem):
            items.append(_message_item(item.role, _parts(item), item.id))
        elif isinstance(item, FunctionCallItem):
            fields: Item = {"call_id": item.call_id, "name": item.name, "arguments": item.arguments}
            items.append(_item("function_call", item.id or new_id("fc"), fields))
        elif isinstance(item, FunctionCallOutputItem):
            output = item.output if isinstance(item.output, str) else _dump(item.output)
            fields = {"call_id": item.call_id, "output": output}
            items.append(_item("function_call_output", item.id or new_id("fco"), fields))
    return items


def _item(kind: str, item_id: str, fields: Item) -> Item:
    return {"id": item_id, "type": kind, **fields, "status": "completed"}


def _message_item(role: str, content: list[Item], item_id: str | None = None) -> Item:
    return _item("message", item_id or new_id("msg"), {"role": role, "content": content})


def _parts(item: MessageItem) -> list[Item]:
    assistant = item.role == "assistant"
    if isinstance(item.content, str):
        return [_text_part(item.content, assistant)]
    return _dump(item.content, assistant=assistant)


def _dump(parts: Sequence[ContentPart], *, assistant: bool = False) -> list[Item]:
    dumped: list[Item] = []
    for part in parts:
        if isinstance(part, InputImage):
            dumped.append(
                {
                    "type": "input_image",
                    "image_url": part.image_url,
                    "detail": part.detail or "auto",
                }
            )
        elif isinstance(part, TEXT_PARTS):
            dumped.append(_text_part(part.text, assistant))
        elif isinstance(part, Refusal):
            dumped.append({"type": "refusal", "refusal": part.refusal})
    return dumped


def _text_part(text: str, assistant: bool) -> Item:
    if assistant:
        return {"type": "output_text", "text": text, "annotations": []}
    return {"type": "input_text", "text": text}


def page(
    items: Sequence[Item],
    *,
    order: str = "desc",
    limit: int = DEFAULT_PAGE,
    after: str | None = None,
) -> Item:
    """One page of items in OpenAI's list shape (`order` desc by default, as OpenAI's)."""
    if order not in ("asc", "desc"):
        raise InvalidRequest("`order` must be 'asc' or 'desc'", param="order")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"`limit` must be between 1 and {MAX_PAGE}", param="limit")
    ordered = list(items) if order == "asc" else list(reversed(items))
    start = 0
    if after is not None:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            raise InvalidRequest(f"no input item with id {after!r}", param="after")
        start = ids.index(after) + 1
    data = ordered[start : start + limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": start + limit < len(ordered),
    }
