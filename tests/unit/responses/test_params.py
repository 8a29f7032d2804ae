"""Chat `param`s named as the Responses request's fields they came from."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import ImageError, InvalidType
from app.responses.params import ResponsesParams
from app.responses.schemas import parse_request
from app.responses.translate import Origins, input_messages

ITEMS: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather?"},
    {"type": "reasoning", "summary": []},  # dropped: no message comes of it
    {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
    {"type": "function_call", "call_id": "c2", "name": "time", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    {"role": "user", "content": [{"type": "input_text", "text": "And this?"}]},
]


def params_for(history: int = 0, **fields: Any) -> ResponsesParams:
    request = parse_request({"model": "m", **fields})
    origins: Origins = []
    input_messages(request, origins)
    return ResponsesParams(request, history, origins)


@pytest.mark.parametrize(
    ("chat", "responses"),
    [
        ("messages[0].content", "instructions"),
        ("messages[1].content", "previous_response_id"),
        ("messages[2].content", "previous_response_id"),
        ("messages[3].content", "input[0].content"),
        ("messages[4].tool_calls", "input[2].tool_calls"),  # both calls join one message
        ("messages[5].content", "input[4].output"),
        ("messages[6].content[0].image_url", "input[5].content[0].image_url"),
        ("messages", "input"),
        ("max_completion_tokens", "max_output_tokens"),
        ("response_format.json_schema", "text.format.json_schema"),
        ("temperature", "temperature"),
        (None, None),
    ],
)
def test_each_chat_param_names_the_responses_field(chat: str | None, responses: str | None) -> None:
    params = params_for(2, instructions="Be brief.", input=ITEMS)

    assert params.name(chat) == responses


def test_a_string_input_is_named_whole() -> None:
    assert params_for(input="Hi.").name("messages[0].content") == "input"


def test_renaming_an_error_renames_what_its_message_quotes() -> None:
    params = params_for(instructions="Be brief.", input=ITEMS)
    error = InvalidType(
        "Invalid type for 'messages[1].content': expected a string.", param="messages[1].content"
    )

    with pytest.raises(InvalidType) as caught, params.naming():
        raise error

    assert caught.value.param == "input[0].content"
    assert caught.value.message == "Invalid type for 'input[0].content': expected a string."


@pytest.mark.anyio
async def test_named_work_raises_its_errors_renamed() -> None:
    params = params_for(input=ITEMS)

    async def refuse() -> None:
        raise ImageError(
            "the bytes are not a readable image", param="messages[3].content[0].image_url"
        )

    with pytest.raises(ImageError) as caught:
        await params.named(refuse())

    assert caught.value.param == "input[5].content[0].image_url"


def test_the_files_a_tool_returned_are_named_in_its_output() -> None:
    image = {"type": "input_image", "image_url": "https://x.test/a.png"}
    items = [
        {"role": "user", "content": "Look it up."},
        {"type": "function_call", "call_id": "c1", "name": "find", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [{"type": "input_text", "text": "Found:"}, image],
        },
        {"role": "user", "content": "What is it?"},
    ]
    params = params_for(input=items)

    # Chat: user, assistant with the call, tool, the attached files (a line, then the image),
    # then the last user message.
    assert params.name("messages[2].content") == "input[2].output"
    assert params.name("messages[3].content[1].image_url") == "input[2].output[1].image_url"
    assert params.name("messages[3].content[0]") == "input[2].output"
    assert params.name("messages[4].content") == "input[3].content"
