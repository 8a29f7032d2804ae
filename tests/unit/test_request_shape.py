"""The raw-body count of JSON items: exact where it matters, whatever strings hold."""

from __future__ import annotations

import orjson
import pytest

from app.config import RequestsConfig
from app.errors import InvalidJSON, InvalidRequest
from app.wire.shape import RequestShape, prompt_extras

LIMIT = 1000
SHAPE = RequestShape(RequestsConfig(max_json_items=LIMIT))


def body_with(content: object) -> bytes:
    return orjson.dumps({"model": "m", "messages": [{"role": "user", "content": content}]})


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a, b: {c} [d]" * 5000, id="separators and brackets inside a string"),
        pytest.param('say "a", "b": [1, 2]' * 3000, id="escaped quotes"),
        pytest.param("a path: C:\\\\dir\\\\" * 3000, id="escaped backslashes before quotes"),
    ],
)
def test_what_strings_hold_is_not_counted(text: str) -> None:
    body = body_with(text)
    assert len(body) > 2 * LIMIT  # long enough to be counted

    assert SHAPE.load(bytearray(body))["messages"] == [{"role": "user", "content": text}]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param([{"type": "text", "text": ""}] * LIMIT, id="objects"),
        pytest.param(["x"] * (LIMIT + 1), id="strings"),
        pytest.param([0] * (LIMIT + 1), id="numbers"),
        pytest.param([[]] * (LIMIT + 1), id="empty arrays"),
    ],
)
def test_more_items_than_the_cap_are_refused_before_parsing(content: object) -> None:
    with pytest.raises(InvalidRequest, match="max_json_items"):
        SHAPE.load(body_with(content))


def test_a_body_just_under_the_cap_is_parsed() -> None:
    content = [0] * (LIMIT - 10)
    assert SHAPE.load(body_with(content))["messages"] == [{"role": "user", "content": content}]


def test_an_unterminated_string_is_invalid_json_not_a_crash() -> None:
    body = b'{"model": "m", "messages": [' + b"0," * LIMIT + b'"open'

    with pytest.raises(InvalidRequest, match="max_json_items"):
        SHAPE.load(body)
    with pytest.raises(InvalidJSON):
        SHAPE.load(b'{"model": "' + b"x" * 4 * LIMIT)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "f", "description": "d" * 90}}]},
            "tools",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": "s" * 90}}},
            "response_format",
        ),
        ({"user": "u" * 101}, "user"),
        ({"instructions": "i" * 101}, "instructions"),
    ],
)
def test_what_becomes_prompt_besides_the_messages_shares_their_text_budget(
    fields: dict[str, object], param: str
) -> None:
    shape = RequestShape(RequestsConfig(max_text_chars=100))
    alone = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}

    with pytest.raises(InvalidRequest) as caught:
        shape.load(orjson.dumps(alone))
    assert caught.value.param == param

    small = RequestShape(RequestsConfig(max_text_chars=10_000))
    payload = small.load(orjson.dumps({"model": "m", "messages": [], **fields}))
    extra = prompt_extras(payload)
    with pytest.raises(InvalidRequest) as caught:  # with the messages' text: one budget
        small.check_messages(
            [{"role": "user", "content": "x" * (10_000 - extra[0] + 1)}], extra=extra
        )
    assert caught.value.param == "messages[0].content"
