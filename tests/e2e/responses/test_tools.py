"""Function tools over the Responses API: the flat tool form reaches an OpenAI-compatible
upstream as chat tools, its tool calls come back as `function_call` items (streamed too), and
`function_call_output` items go back as tool messages. What no upstream can run is refused."""

from __future__ import annotations

import json
from typing import Any, cast

import httpx
import openai
import pytest
from openai.types.responses import FunctionTool, FunctionToolParam, ResponseFunctionToolCall

from tests.e2e.envelope import assert_error
from tests.e2e.fakes.openai_compat import Reply, ToolCall
from tests.e2e.responses.conftest import Fakes
from tests.e2e.responses.helpers import QUESTION, RED_SQUARE, ask, assert_sequence_increases

pytestmark = pytest.mark.e2e

WEATHER_TOOL: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
CALL = ToolCall("call_weather_1", "get_weather", '{"city": "Paris"}')


def test_a_tool_call_round_trip_with_previous_response_id(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    upstream = fakes["openai"]
    upstream.script(
        "upstream-vision", Reply(text="", tool_calls=[CALL]), Reply(text="Sunny in Paris.")
    )

    asked = sync_client.responses.create(
        model="openai",
        input=ask("Is it sunny where this was taken?", RED_SQUARE),
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )

    [call] = asked.output
    assert isinstance(call, ResponseFunctionToolCall)
    assert call.id is not None
    assert call.id.startswith("fc_")
    assert (call.call_id, call.name) == ("call_weather_1", "get_weather")
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert isinstance(asked.tools[0], FunctionTool)
    assert asked.tools[0].name == "get_weather"
    sent = upstream.received[0].body
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER_TOOL["parameters"],
                "strict": True,
            },
        }
    ]
    assert sent["tool_choice"] == "auto"

    answered = sync_client.responses.create(
        model="openai",
        previous_response_id=asked.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER_TOOL],
    )

    assert answered.output_text == "Sunny in Paris."
    messages = upstream.received[1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[0]["content"][1]["image_url"]["url"] == RED_SQUARE
    assert messages[1]["tool_calls"] == [CALL.as_chat()]
    assert messages[2] == {"role": "tool", "tool_call_id": "call_weather_1", "content": "sunny"}


def test_a_stateless_round_trip_sends_the_call_and_its_output(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    """As clients that keep their own history do: the call and its output as input items."""
    sync_client.responses.create(
        model="openai",
        store=False,
        input=[
            *cast("list[Any]", ask(QUESTION)),
            {
                "type": "function_call",
                "call_id": CALL.call_id,
                "name": CALL.name,
                "arguments": CALL.arguments,
            },
            {"type": "function_call_output", "call_id": CALL.call_id, "output": "rain"},
        ],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "name": "get_weather"},
    )

    sent = fakes["openai"].received[0].body
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool"]
    assert sent["messages"][1]["tool_calls"] == [CALL.as_chat()]
    assert sent["messages"][2]["content"] == "rain"
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_a_streamed_tool_call_streams_its_arguments(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    fakes["openai"].script("upstream-vision", Reply(text="Let me check.", tool_calls=[CALL]))

    with sync_client.responses.stream(
        model="openai",
        input="Weather in Paris?",
        tools=[WEATHER_TOOL],
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()

    assert_sequence_increases(list(events))
    types = [event.type for event in events]
    assert "response.function_call_arguments.delta" in types
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [e.arguments for e in done] == [CALL.arguments]
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == CALL.arguments
    message, call = final.output
    assert message.type == "message"
    assert final.output_text == "Let me check."
    assert call.type == "function_call"
    assert (call.call_id, call.arguments) == (CALL.call_id, CALL.arguments)
    assert types[-1] == "response.completed"


@pytest.mark.parametrize(
    ("request_fields", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f_1"}]}]},
            "input[0].content[0]",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f_1"}]}]},
            "input[0].content[0]",
        ),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0]"),
    ],
)
def test_what_no_upstream_can_take_is_unsupported_parameter(
    all_gateway: str, fakes: Fakes, request_fields: dict[str, Any], param: str
) -> None:
    body = {"model": "openai", "input": "Hi.", **request_fields}

    answer = httpx.post(f"{all_gateway}/v1/responses", json=body, timeout=10)

    assert_error(answer, 400, "invalid_request_error", "unsupported_parameter", param=param)
    assert fakes["openai"].received == []


@pytest.mark.parametrize("model", ["masterpiecex", "takeoff", "vlmrun"])
def test_tools_to_a_provider_without_them_are_unsupported_parameter(
    all_gateway: str, fakes: Fakes, model: str
) -> None:
    body = {"model": model, "input": ask(QUESTION, RED_SQUARE), "tools": [WEATHER_TOOL]}

    answer = httpx.post(f"{all_gateway}/v1/responses", json=body, timeout=10)

    assert_error(answer, 400, "invalid_request_error", "unsupported_parameter", param="tools")
    assert fakes["masterpiecex"].received == []
