"""Errors named in the Responses request's own fields: the chat request it became is the
gateway's business, so `messages[3].content[1].image_url` is reported as the input it came from,
`input[1].content[1].image_url`, whatever `instructions` or stored history came before it."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import TypeVar

from app.errors import GatewayError
from app.responses.schemas import FunctionCallOutputItem, ResponsesRequest
from app.responses.translate import Origins

T = TypeVar("T")

_MESSAGE = re.compile(r"messages\[(\d+)\]")
_PART = re.compile(r"\.content\[(\d+)\]")
# Chat fields under their Responses names.
_FIELDS = {
    "messages": "input",
    "max_completion_tokens": "max_output_tokens",
    "max_tokens": "max_output_tokens",
    "response_format": "text.format",
}


class ResponsesParams:
    """Where each message of the chat request came from: `instructions`, the stored
    conversation of `previous_response_id`, or an item of `input` (`origins`, as
    `input_messages` gives them)."""

    def __init__(self, request: ResponsesRequest, history: int, origins: Origins) -> None:
        self._request = request
        first: Origins = ["instructions"] if request.instructions else []
        self._origins = [*first, *["previous_response_id"] * history, *origins]

    def name(self, param: str | None) -> str | None:
        """The Responses field a chat request's `param` is about."""
        if param is None:
            return None
        found = _MESSAGE.match(param)
        if found is None:
            head, dot, rest = param.partition(".")
            return _FIELDS.get(head, head) + dot + rest
        index, rest = int(found.group(1)), param[found.end() :]
        origin = self._origins[index] if index < len(self._origins) else "input"
        if isinstance(origin, list):  # the files tools returned: each part has its own
            part = _PART.match(rest)
            if part is None or int(part.group(1)) >= len(origin):
                return origin[0] if origin else "input"
            return origin[int(part.group(1))] + rest[part.end() :]
        if not origin.startswith("input["):
            return origin  # a string: the whole of it
        if rest.startswith(".content") and self._is_output(origin):
            rest = ".output" + rest.removeprefix(".content")
        return origin + rest

    def _is_output(self, origin: str) -> bool:
        items = self._request.input
        index = int(origin[len("input[") : -1])
        return isinstance(items, list) and isinstance(items[index], FunctionCallOutputItem)

    def rename(self, error: GatewayError) -> None:
        """`error` about the Responses request instead of the chat request."""
        old = error.param
        new = self.name(old)
        if new != old:
            error.message = error.message.replace(f"'{old}'", f"'{new}'")
            error.param = new

    def naming(self) -> ResponsesParams:
        """`with params.naming():` errors raised inside name the Responses request's fields.
        (A class's `__exit__`, not a generator's: it wraps every Responses request twice.)"""
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        if isinstance(error, GatewayError):
            self.rename(error)

    async def named(self, work: Awaitable[T]) -> T:
        """`await work`, its errors naming the Responses request's fields."""
        with self:
            return await work
