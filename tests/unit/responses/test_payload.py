"""The `response` object as plain data: byte for byte what the `Response` model dumps of it, and
what the `openai` SDK reads, however it was made (a non-streamed answer, a stream's start, end
or failure)."""

from __future__ import annotations

from typing import Any

import openai.types.responses as sdk
import orjson
import pytest

from app.errors import GatewayError, ImageFetchFailed, UpstreamTimeout
from app.responses.objects import Response
from app.responses.payload import (
    answer_message,
    call_item,
    failed_data,
    finished_data,
    message_item,
    response_data,
    started_data,
    text_part,
)
from app.responses.schemas import parse_request
from app.wire.schemas import ChatCompletion, CompletionUsage

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


def assert_as_the_model_dumps(data: dict[str, Any]) -> None:
    """`data` is a `Response` as the wire model serialises it: every field, in its order, with
    its escapes, and nothing the model would change."""
    sent = orjson.dumps(data)
    assert sent == Response.model_validate(data).model_dump_json().encode()
    sdk.Response.model_validate(orjson.loads(sent))


@pytest.mark.parametrize(("body", "answer"), cases())
def test_a_completions_data_is_what_the_model_dumps_byte_for_byte(
    body: dict[str, Any], answer: dict[str, Any]
) -> None:
    request = parse_request({"model": "m", "input": "x", **body})
    completion = ChatCompletion.model_validate({"model": "m", **answer})

    assert_as_the_model_dumps(response_data(completion, request, response_id="resp_1"))


@pytest.mark.parametrize("body", REQUESTS)
@pytest.mark.parametrize(
    ("finish_reason", "failure"),
    [
        ("stop", None),
        ("length", None),
        (None, UpstreamTimeout("slow")),
        (None, ImageFetchFailed("x")),
    ],
)
def test_a_streams_data_is_what_the_model_dumps_at_every_stage(
    body: dict[str, Any], finish_reason: str | None, failure: GatewayError | None
) -> None:
    request = parse_request({"model": "m", "input": "x", "stream": True, **body})
    output = [
        message_item("in_progress", [text_part('A "cat" \u2028')]),
        call_item("call_1", "look", '{"a":1}', "in_progress"),
    ]
    started = started_data(request, created_at=7)
    assert_as_the_model_dumps(started)

    if failure is None:
        usage = CompletionUsage(prompt_tokens=2, completion_tokens=1)
        ended = finished_data(started, output, finish_reason, usage, {"job_id": "j"})
    else:
        ended = failed_data(started, output, failure)

    assert_as_the_model_dumps(ended)
    assert started["status"] == "in_progress"
    assert (ended["id"], ended["created_at"]) == (started["id"], 7)
    status = "failed" if failure else "incomplete" if finish_reason == "length" else "completed"
    assert ended["status"] == status
    item_status = "completed" if status == "completed" else "incomplete"
    statuses = [item["status"] for item in orjson.loads(orjson.dumps(ended["output"]))]
    assert statuses == [item_status, item_status]
    assert output[0]["status"] == "in_progress"  # the items as the stream had them are kept


@pytest.mark.parametrize(("body", "answer"), cases())
def test_the_data_is_a_response_the_sdk_reads_and_its_answer_message_says_the_same(
    body: dict[str, Any], answer: dict[str, Any]
) -> None:
    request = parse_request({"model": "m", "input": "x", **body})
    completion = ChatCompletion.model_validate({"model": "m", **answer})
    data = orjson.loads(orjson.dumps(response_data(completion, request)))

    parsed = sdk.Response.model_validate(data)

    choices = answer["choices"]
    assert parsed.id == data["id"]
    assert parsed.output_text == ((choices[0]["message"]["content"] or "") if choices else "")
    calls = [item for item in parsed.output if isinstance(item, sdk.ResponseFunctionToolCall)]
    message = answer_message(data)
    if message is None:
        assert not parsed.output_text
        assert not calls
        return
    assert message["content"] == (parsed.output_text or None)
    assert message.get("tool_calls", []) == [
        {
            "id": c.call_id,
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments},
        }
        for c in calls
    ]
