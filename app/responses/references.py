"""Stored responses' output items by id, so that an `item_reference` to one expands to it.

Each message and function call of a stored response is kept once more under its own id, for
the response's time to live, in the state backend (so any worker or replica expands it), and
counted against the same quotas as the response. An entry names its owner: another key's
item, like an unknown or expired one, is 404 `item_not_found` naming the reference.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import orjson
from pydantic import ValidationError

from app.errors import ItemNotFound
from app.responses.payload import ResponseData
from app.responses.schemas import FunctionCallItem, ItemReference, MessageItem, ResponsesRequest
from app.state import Quota, StateBackend

logger = logging.getLogger(__name__)

# Output items an `item_reference` may name, as the input items they become.
_INPUT_ITEMS: dict[str, type[MessageItem] | type[FunctionCallItem]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
}


class OutputItems:
    """Index, expand and forget the output items of stored responses."""

    def __init__(self, state: StateBackend, ttl_s: float) -> None:
        self._state = state
        self._ttl_s = ttl_s

    async def keep(self, response: ResponseData, owner: str, quotas: Sequence[Quota]) -> bool:
        """Index each of the response's messages and function calls; False when one of them
        did not fit the quotas (the others stay, and expire with the response)."""
        kept = True
        for item in _indexed(response):
            entry = orjson.dumps({"owner": owner, "item": item}).decode()
            if not await self._state.set_counted(_key(item["id"]), entry, self._ttl_s, quotas):
                kept = False
        return kept

    async def forget(self, response: object, quotas: Sequence[Quota]) -> None:
        """Drop the index entries of a deleted response."""
        for item in _indexed(response):
            await self._state.delete_counted(_key(item["id"]), quotas)

    async def expand(self, request: ResponsesRequest, owner: str) -> None:
        """Replace each `item_reference` in `input` by the item it names."""
        items = request.input
        if not isinstance(items, list):
            return
        found = [(i, item) for i, item in enumerate(items) if isinstance(item, ItemReference)]
        if not found:
            return
        entries = await asyncio.gather(*[self._state.get(_key(ref.id)) for _, ref in found])
        expanded = list(items)
        for (i, reference), entry in zip(found, entries, strict=True):
            expanded[i] = _input_item(entry, owner, reference, i)
        request.input = expanded


def _indexed(response: object) -> list[dict[str, object]]:
    output = response.get("output") if isinstance(response, dict) else None
    return [
        item
        for item in output or ()
        if isinstance(item, dict) and item.get("type") in _INPUT_ITEMS and item.get("id")
    ]


def _input_item(
    entry: str | None, owner: str, reference: ItemReference, index: int
) -> MessageItem | FunctionCallItem:
    stored = orjson.loads(entry) if entry is not None else None
    if isinstance(stored, dict) and stored.get("owner") == owner:
        item = stored.get("item")
        kind = _INPUT_ITEMS.get(str(item.get("type"))) if isinstance(item, dict) else None
        if kind is not None:
            try:
                return kind.model_validate(item)
            except ValidationError:
                logger.warning("stored output item %s is not an input item", reference.id)
    raise ItemNotFound(f"Item with id {reference.id[:100]!r} not found.", param=f"input[{index}]")


def _key(item_id: object) -> str:
    return f"responses:item:{item_id}"
