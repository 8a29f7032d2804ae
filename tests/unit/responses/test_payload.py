"""The non-streamed `response` as plain data: byte for byte what the `Response` model dumps when
the stream's builders make it, and what the `openai` SDK reads."""

from __future__ import annotations

import re
from typing import Any

import openai.types.responses as sdk
import orjson
import pytest

from app.responses.objects import Response
from app.responses.output import output_message, to_response
from app.responses.payload import answer_message, response_data
from app.responses.schemas import parse_request
from app.wire.schemas import ChatCompletion

ITEM_ID = re.compile(rb'"(msg|fc)_[0-9a-f]{48}"')

CALL = {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": '{"a":1}'}}
SETTINGS: dict[str, Any] = {
    "instructions": "Be brief.",
    "max_output_tokens": 64,
    "temperature": 1,
    "top_p": 0.25,
    "parallel_tool_calls": False,
    "tools": [
        {"type": "function", "name": "look", "parameters": {"type": "object", "x": 1e-7}},
        {"type": "function", "name": "other", "description": "d", "strict": True},
    ],
    "tool_choice": {"type": "function", "name": "look"},
    "text": {"format": {"type": "json_schema", "name": "n", "schema": {}}, "verbosity": "low"},
    "metadata": {"k": "v"},
    "user": "u-1",
    "store": False,
    "reasoning": {"effort": "low"},
    "truncation": "auto",
    "service_tier": "flex",
    "include": ["x"],
    "previous_response_id": "resp_0",
}

REQUESTS = [
    {},
    SETTINGS,
    {"text": {}, "tool_choice": "required", "metadata": {}},
]
ANSWERS: list[dict[str, Any]] = [
    {"choices": [{"message": {"role": "assistant", "content": "A cat."}}]},
    {
        "choices": [
            {
                "message": {"role": "assistant", "content": 'é \u2028 \x01 "q" \\', "x": 1},
                "finish_reason": "length",
            }
        ],
        "usage": {
            "prompt_tokens": 11,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
        "x_gateway": {"provider": "vlmrun", "job_id": "j1", "score": 1.5e16},
    },
    {
        "choices": [
            {
                "message": {"role": "assistant", "content": None, "tool_calls": [CALL, {"x": 1}]},
                "finish_reason": "tool_calls",
            }
        ]
    },
    {
        "choices": [
            {
                "message": {"role": "assistant", "content": "Also.", "tool_calls": [CALL]},
                "finish_reason": "content_filter",
            }
        ],
        "usage": None,
    },
    {
        "choices": [{"message": {"role": "assistant", "content": ""}, "finish_reason": None}],
        "usage": {"total_tokens": 5, "prompt_tokens_details": {"cached_tokens": True}},
    },
    {"choices": []},
]


def cases() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(body, answer) for body in REQUESTS for answer in ANSWERS]


@pytest.mark.parametrize(("body", "answer"), cases())
def test_the_data_is_what_the_model_dumps_byte_for_byte(
    body: dict[str, Any], answer: dict[str, Any]
) -> None:
    request = parse_request({"model": "m", "input": "x", **body})
    completion = ChatCompletion.model_validate({"model": "m", **answer})
    built = orjson.dumps(response_data(completion, request, response_id="resp_1", created_at=7))
    model = to_response(completion, request, response_id="resp_1", created_at=7)
    # Item ids are fresh in each; everything else must match, down to key order and escapes.
    assert ITEM_ID.sub(b'"id"', built) == ITEM_ID.sub(b'"id"', model.model_dump_json().encode())


@pytest.mark.parametrize(("body", "answer"), cases())
def test_the_data_is_a_response_the_sdk_and_the_wire_model_read(
    body: dict[str, Any], answer: dict[str, Any]
) -> None:
    request = parse_request({"model": "m", "input": "x", **body})
    completion = ChatCompletion.model_validate({"model": "m", **answer})
    data = orjson.loads(orjson.dumps(response_data(completion, request)))

    parsed = sdk.Response.model_validate(data)
    model = Response.model_validate(data)

    assert model.model_dump(mode="json") == data
    assert (parsed.id, parsed.output_text) == (data["id"], model.output_text)
    assert answer_message(data) == output_message(model)
