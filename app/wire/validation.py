"""pydantic's validation errors as OpenAI's: the message, and `param` naming the bad value."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_core import ErrorDetails

from app.errors import InvalidRequest

# Discriminator values pydantic puts in error locations after a list index.
_TAGS = frozenset(
    {"system", "developer", "user", "assistant", "tool", "function"}
    | {"text", "image_url", "input_audio", "file", "refusal"}
    # The Responses API's item and content part types.
    | {"message", "function_call", "function_call_output", "other"}
    | {"input_text", "input_image", "input_file", "output_text"}
)


def _param_from_location(loc: tuple[int | str, ...]) -> str | None:
    """`messages[0].content[1].image_url.url` from pydantic's location, its union member
    names and discriminator tags left out."""
    param, after_index = "", False
    for part in loc:
        if isinstance(part, int):
            param += f"[{part}]"
            after_index = True
            continue
        is_tag = after_index and part in _TAGS
        after_index = False
        if part == "body" or is_tag or "[" in part or part in ("str", "int", "float", "bool"):
            continue
        param += f".{part}" if param else part
    return param or None


def validation_error(errors: Sequence[ErrorDetails]) -> InvalidRequest:
    """Turn pydantic's complaints into an OpenAI-style message with `param`. Of a union's
    complaints, the one that went deepest into the value says what is wrong."""
    worst = max(errors, key=lambda error: len(tuple(error.get("loc", ()))))
    param = _param_from_location(tuple(worst.get("loc", ())))
    message = str(worst.get("msg", "invalid request"))
    return InvalidRequest(f"{message} ({param})" if param else message, param=param)
