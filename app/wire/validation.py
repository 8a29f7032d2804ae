"""pydantic's validation errors as OpenAI's: its codes (`missing_required_parameter`,
`invalid_type`, `invalid_value`), its plain words, and `param` naming the bad value. No
validation library's wording or class names reach a client."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic_core import ErrorDetails

from app.errors import InvalidRequest, InvalidType, MissingParameter
from app.errors.quoting import shortened

# Discriminator values pydantic puts in error locations after a list index.
_TAGS = frozenset(
    {"system", "developer", "user", "assistant", "tool", "function"}
    | {"text", "image_url", "input_audio", "file", "refusal"}
    # The Responses API's item and content part types.
    | {"message", "function_call", "function_call_output", "item_reference", "other"}
    | {"input_text", "input_image", "input_file", "output_text"}
)
# What a value was expected to be, by pydantic's type error.
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "none_required": "null",
}
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


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
    """One OpenAI error for pydantic's complaints. Of a union's complaints, those that went
    deepest into the value say what is wrong; when they all say its type is wrong, the
    message names each type it could have been."""
    worst = max(errors, key=lambda error: len(tuple(error.get("loc", ()))))
    param = _param_of(worst)
    found = [error for error in errors if _param_of(error) == param]
    wrong_values = [error for error in found if not _is_type_error(error)]
    if wrong_values:
        return _value_error(wrong_values[0], param)
    expected = [_expected(error) for error in found]
    return _type_error(param, list(dict.fromkeys(expected)), _got(_discriminated(worst)))


def _param_of(error: ErrorDetails) -> str | None:
    """The value at fault: a discriminated union's complaint is about its discriminator."""
    param = _param_from_location(tuple(error.get("loc", ())))
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        field = _discriminator(error)
        param = f"{param}.{field}" if param else field
    return param


def _discriminator(error: ErrorDetails) -> str:
    return str((error.get("ctx") or {}).get("discriminator", "type")).strip("'")


def _discriminated(error: ErrorDetails) -> object:
    """The value an error is about (for a discriminated union: its discriminator's)."""
    value = error.get("input")
    if error["type"] == "union_tag_invalid" and isinstance(value, dict):
        return value.get(_discriminator(error))
    return value


def _is_type_error(error: ErrorDetails) -> bool:
    kind = error["type"]
    if kind in ("literal_error", "union_tag_invalid"):
        # `"detail": 5` is of the wrong type; `"detail": "ultra"` is a wrong value.
        return not isinstance(_discriminated(error), str)
    return kind in _EXPECTED


def _expected(error: ErrorDetails) -> str:
    return _EXPECTED.get(error["type"], "a string")


def _type_error(param: str | None, expected: list[str], got: str) -> InvalidRequest:
    wanted = expected[0] if len(expected) == 1 else f"one of {_listed(expected, 'or')}"
    where = f" for '{param}'" if param else ""
    return InvalidType(
        f"Invalid type{where}: expected {wanted}, but got {got} instead.", param=param
    )


def _got(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _value_error(error: ErrorDetails, param: str | None) -> InvalidRequest:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    name = f"'{param}'" if param else "request body"
    if kind in ("missing", "union_tag_not_found"):
        return MissingParameter(f"Missing required parameter: {name}.", param=param)
    if kind in ("literal_error", "union_tag_invalid"):
        listed = str(ctx.get("expected") or ctx.get("expected_tags") or "")
        allowed = [f"'{value}'" for value in _QUOTED.findall(listed)]
        return InvalidRequest(
            f"Invalid value: '{shortened(str(_discriminated(error)))}'. Supported values are: "
            f"{_listed(allowed, 'and')}.",
            param=param,
        )
    return InvalidRequest(f"Invalid {name}: {_problem(kind, ctx, value)}", param=param)


def _problem(kind: str, ctx: dict[str, object], value: object) -> str:
    """What is wrong with a value of the right type, in OpenAI's words."""
    number = "integer" if isinstance(value, int) else "decimal"
    size = len(value) if isinstance(value, str | list | dict) else 0
    bounds = {
        "greater_than_equal": ("below minimum", ">=", "ge"),
        "greater_than": ("below minimum", ">", "gt"),
        "less_than_equal": ("above maximum", "<=", "le"),
        "less_than": ("above maximum", "<", "lt"),
    }
    if kind in bounds:
        side, sign, key = bounds[kind]
        return (
            f"{number} {side} value. Expected a value {sign} {_number(ctx.get(key))}, "
            f"but got {_number(value)} instead."
        )
    if kind == "string_too_short":
        got = "an empty string" if size == 0 else f"a string with length {size}"
        return (
            f"string too short. Expected a string with minimum length {ctx.get('min_length')}, "
            f"but got {got} instead."
        )
    if kind == "string_too_long":
        return (
            f"string too long. Expected a string with maximum length {ctx.get('max_length')}, "
            f"but got a string with length {size} instead."
        )
    if kind == "too_long" and isinstance(value, dict):
        return (
            f"too many properties. Expected an object with at most {ctx.get('max_length')} "
            f"properties, but got {size} instead."
        )
    if kind == "too_short":
        if size == 0:
            return (
                f"empty array. Expected an array with minimum length {ctx.get('min_length')}, "
                "but got an empty array instead."
            )
        return (
            f"array too short. Expected an array with minimum length {ctx.get('min_length')}, "
            f"but got an array with length {size} instead."
        )
    if kind == "too_long":
        return (
            f"array too long. Expected an array with maximum length {ctx.get('max_length')}, "
            f"but got an array with length {size} instead."
        )
    if kind == "value_error":
        return f"{ctx.get('error')}."
    return "the value is not valid here."


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return shortened(str(value))


def _listed(items: Sequence[str], conjunction: str) -> str:
    """`a`, `a or b`, `a, b, or c`: a list as OpenAI's messages write one."""
    if len(items) <= 2:
        return f" {conjunction} ".join(items)
    return f"{', '.join(items[:-1])}, {conjunction} {items[-1]}"
