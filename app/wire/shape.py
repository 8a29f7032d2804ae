"""Caps on what a chat request body may hold, checked before it becomes Python objects."""

from __future__ import annotations

import orjson

from app.config import RequestsConfig
from app.errors import InvalidJSON, InvalidRequest
from app.errors.quoting import shortened
from app.server.threads import WorkerThreads

Body = bytes | bytearray

_BACKSLASH = b"\\"
_QUOTE = b'"'
_SEPARATORS = (b",", b":")
_MANY_STRINGS = 1000
_WINDOW = 1024 * 1024
_OPENERS = (b"{", b"[")


class RequestShape:
    """Refuses, with a 400, a body whose shape is over `requests:` limits. `load` counts the
    JSON items of the raw body before parsing it (a parsed item costs up to ~250 bytes, so a
    32 MB body of tiny items would cost gigabytes), then checks depth, model name, messages,
    content parts and text on the parsed payload, before pydantic builds anything."""

    def __init__(self, limits: RequestsConfig) -> None:
        self._limits = limits
        # Large bodies are parsed one at a time: with more threads contending for the GIL,
        # the event loop's thread waits longer for it.
        self.parsing = WorkerThreads(1)

    def load(self, body: Body) -> dict[str, object]:
        """The body as a JSON object, once its shape is known to be within the limits."""
        containers = self._check_items(body)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidJSON("the request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise InvalidRequest("the request body must be a JSON object")
        if containers > self._limits.max_json_depth:  # fewer containers cannot nest deeper
            self._check_depth(payload)
        self._check_model(payload.get("model"))
        self.check_messages(payload.get("messages"), extra=prompt_extras(payload))
        return payload

    def _check_items(self, body: Body) -> int:
        """Refuse more than `max_json_items` items; return an upper bound on the containers."""
        limit = self._limits.max_json_items
        if len(body) // 2 + 1 <= limit:  # every item after the first takes two bytes or more
            return body.count(b"{") + body.count(b"[")
        strings, skeleton = _outside_strings(body, limit)
        containers = sum(skeleton.count(opener) for opener in _OPENERS)
        items = 1 + containers + sum(skeleton.count(sep) for sep in _SEPARATORS)
        if max(strings, items) > limit:
            raise InvalidRequest(
                f"the request body holds more than {limit} JSON values (requests.max_json_items)"
            )
        return containers

    def _check_depth(self, payload: dict[str, object]) -> None:
        room = self._limits.max_json_depth - 1
        for key, value in payload.items():
            if _deeper_than(value, room):
                raise InvalidRequest(
                    f"{shortened(key)} is nested more than {self._limits.max_json_depth} "
                    "levels deep (requests.max_json_depth)",
                    param=shortened(key),
                )

    def _check_model(self, model: object) -> None:
        limit = self._limits.max_model_chars
        if isinstance(model, str) and len(model) > limit:
            raise InvalidRequest(f"the model name is longer than {limit} characters", param="model")

    def check_messages(
        self, messages: object, param: str | None = None, extra: PromptExtras = (0, None)
    ) -> None:
        """The `requests:` caps on a conversation; `param` names it in errors when it is not
        the body's own `messages` (a Responses conversation, say). `extra` is what else
        becomes prompt (`prompt_extras`): its characters count against `max_text_chars`
        with the messages' text."""
        limits = self._limits
        text, biggest = extra
        if text > limits.max_text_chars:
            raise _too_much_text(limits.max_text_chars, biggest)
        if not isinstance(messages, list):
            return  # validation says what is wrong with it
        if len(messages) > limits.max_messages:
            raise InvalidRequest(
                f"more than {limits.max_messages} messages (requests.max_messages)",
                param=param or "messages",
            )
        parts = 0
        for index, message in enumerate(messages):
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                text += len(content)
            elif isinstance(content, list):
                parts += len(content)
                if parts > limits.max_content_parts:
                    raise InvalidRequest(
                        f"more than {limits.max_content_parts} content parts in all "
                        "(requests.max_content_parts)",
                        param=param or f"messages[{index}].content",
                    )
                text += _text_chars(content)
            if text > limits.max_text_chars:
                raise _too_much_text(limits.max_text_chars, param or f"messages[{index}].content")


# Characters of prompt besides the messages' text, and the field that holds the most of them.
PromptExtras = tuple[int, str | None]
# Fields that reach the model besides the messages, counted as they are...
_PROMPT_TEXTS = ("instructions", "user")
# ...and, structured ones, as their JSON: tools and their schemas, a response schema (chat's
# `response_format`, the Responses API's `text.format`).
_PROMPT_STRUCTURES = ("tools", "functions", "response_format", "text")


def prompt_extras(payload: dict[str, object]) -> PromptExtras:
    """What of a request body becomes prompt besides its messages: `instructions` and `user`
    as they are, tools and response schemas as their JSON."""
    total, biggest, most = 0, None, 0
    for name in _PROMPT_TEXTS + _PROMPT_STRUCTURES:
        value = payload.get(name)
        if not value:
            continue
        size = len(value) if isinstance(value, str) else len(orjson.dumps(value))
        total += size
        if size > most:
            biggest, most = name, size
    return total, biggest


def _too_much_text(limit: int, param: str | None) -> InvalidRequest:
    return InvalidRequest(
        f"more than {limit} characters of text in all, instructions, tools and schemas "
        "included (requests.max_text_chars)",
        param=param,
    )


def _outside_strings(body: Body, limit: int) -> tuple[int, bytes]:
    """How many strings `body` holds (counting stops past `limit`) and the bytes between
    them, where JSON's structure is. Finding quotes is a C-speed search, so an image's
    megabytes of base64 cost almost nothing. Escaped backslashes and quotes are dropped first:
    then every quote left opens or closes a string, as a JSON parser reads it."""
    if _BACKSLASH in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside, strings, start = [], 0, 0
    while (opening := body.find(_QUOTE, start)) >= 0:
        strings += 1
        if strings == _MANY_STRINGS and (quotes := _count(body, _QUOTE)) // 2 > limit:
            return quotes // 2, b""  # refused at C speed, not one string at a time
        if strings > limit:
            return strings, b""
        outside.append(body[start:opening])
        closing = body.find(_QUOTE, opening + 1)
        start = len(body) if closing < 0 else closing + 1
    outside.append(body[start:])
    return strings, b"".join(outside)


def _count(body: Body, needle: bytes) -> int:
    """`body.count(needle)` a window at a time: the event loop's thread may take the GIL
    between two windows, where one call over 30 MB would hold it for milliseconds."""
    reach = len(needle) - 1
    return sum(
        body.count(needle, start, start + _WINDOW + reach) for start in range(0, len(body), _WINDOW)
    )


def _deeper_than(value: object, room: int) -> bool:
    """Whether `value` nests more than `room` containers deep."""
    if isinstance(value, dict):
        return room == 0 or any(_deeper_than(child, room - 1) for child in value.values())
    if isinstance(value, list):
        return room == 0 or any(_deeper_than(child, room - 1) for child in value)
    return False


def _text_chars(parts: list[object]) -> int:
    total = 0
    for part in parts:
        text = part.get("text") if isinstance(part, dict) else None
        if isinstance(text, str):
            total += len(text)
    return total
