"""A Responses request as the internal chat request, and a chat completion as a `response`."""

from __future__ import annotations

from typing import Any

import openai.types.responses as sdk
import orjson
import pytest

from app.errors import InvalidRequest, ItemNotFound, UnsupportedParameter
from app.responses.payload import response_data
from app.responses.schemas import parse_request
from app.responses.translate import to_chat_request
from app.wire.schemas import ChatCompletion

PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAAEElEQVR42mP8z4AATAy4OAAmdgEF"
    "DPIXWgAAAABJRU5ErkJggg=="
)


IMAGE = {"type": "input_image", "image_url": "https://example.com/a.png"}
FILE = {"type": "input_file", "file_id": "file-1"}


def chat(**body: Any) -> dict[str, Any]:
    request = parse_request({"model": "m", **body})
    return to_chat_request(request).model_dump(exclude_none=True)


def test_a_string_input_is_one_user_message_after_the_instructions() -> None:
    sent = chat(input="Hi", instructions="Be brief.")
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


def test_input_images_become_image_url_parts_with_their_detail() -> None:
    content = [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": PNG, "detail": "low"},
        {"type": "input_image", "image_url": "https://example.com/a.png"},
    ]
    sent = chat(input=[{"role": "user", "content": content}])
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]


def test_a_tool_round_trip_becomes_assistant_tool_calls_and_a_tool_message() -> None:
    sent = chat(
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Let me look."}],
            },
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call", "call_id": "c2", "name": "time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "noon"}],
            },
            {"type": "reasoning", "id": "rs_1", "summary": []},
        ]
    )
    assert sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                },
                {"id": "c2", "type": "function", "function": {"name": "time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "noon"},
    ]


def test_settings_tools_and_text_format_take_their_chat_names() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    sent = chat(
        input="x",
        max_output_tokens=50,
        temperature=0.5,
        top_p=0.9,
        user="u1",
        metadata={"k": "v"},
        parallel_tool_calls=False,
        tools=[
            {
                "type": "function",
                "name": "f",
                "description": "d",
                "parameters": schema,
                "strict": True,
            }
        ],
        tool_choice={"type": "function", "name": "f"},
        text={
            "format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}
        },
        stream=True,
        store=True,
        reasoning={"effort": "low"},
        truncation="auto",
        include=["message.input_image.image_url"],
        service_tier="auto",
    )
    assert sent["max_completion_tokens"] == 50
    assert (sent["temperature"], sent["top_p"], sent["user"]) == (0.5, 0.9, "u1")
    assert sent["metadata"] == {"k": "v"}
    assert sent["parallel_tool_calls"] is False
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {"name": "f", "description": "d", "parameters": schema, "strict": True},
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    for ignored in (
        "store",
        "reasoning",
        "truncation",
        "include",
        "service_tier",
        "max_output_tokens",
    ):
        assert ignored not in sent


def test_the_previous_conversation_comes_between_the_instructions_and_the_new_input() -> None:
    history: list[dict[str, object]] = [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
    ]
    request = parse_request({"model": "m", "input": "three", "instructions": "sys"})
    sent = to_chat_request(request, history).model_dump(exclude_none=True)
    assert [m["content"] for m in sent["messages"]] == ["sys", "one", "two", "three"]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "input_image", "file_id": "file-1"}, "input[0].content[1]"),
        ({"type": "input_file", "file_id": "file-1"}, "input[0].content[1]"),
        (
            {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}},
            "input[0].content[1]",
        ),
    ],
)
def test_parts_no_upstream_can_take_are_unsupported_naming_the_part(part: Any, param: str) -> None:
    content = [{"type": "input_text", "text": "x"}, part]
    with pytest.raises(UnsupportedParameter) as caught:
        chat(input=[{"role": "user", "content": content}])
    assert caught.value.param == param
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    ("item", "error", "param"),
    [
        (
            {"role": "assistant", "content": [{"type": "output_text", "text": "x"}, IMAGE]},
            InvalidRequest,
            "input[1].content[1]",
        ),
        (
            {"role": "system", "content": [{"type": "input_text", "text": "x"}, FILE]},
            InvalidRequest,
            "input[1].content[1]",
        ),
        (
            {"type": "function_call_output", "call_id": "c1", "output": [FILE]},
            UnsupportedParameter,
            "input[1].output[0]",
        ),
        (
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_file"}]},
            InvalidRequest,
            "input[1].output[0]",
        ),
        (
            {"role": "user", "content": [FILE, {"type": "input_image"}]},
            UnsupportedParameter,
            "input[1].content[0]",
        ),
        (
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "x"}, {"type": "input_image"}],
            },
            InvalidRequest,
            "input[1].content[1].image_url",
        ),
    ],
)
def test_a_part_that_cannot_go_upstream_is_named_by_its_item_and_place(
    item: dict[str, Any], error: type[Exception], param: str
) -> None:
    with pytest.raises(error) as caught:
        chat(input=[{"role": "user", "content": "first"}, item])
    assert isinstance(caught.value, InvalidRequest)
    assert caught.value.param == param


def test_built_in_tools_and_unknown_items_are_unsupported() -> None:
    with pytest.raises(UnsupportedParameter) as tool:
        chat(input="x", tools=[{"type": "function", "name": "f"}, {"type": "web_search"}])
    assert tool.value.param == "tools[1]"
    with pytest.raises(UnsupportedParameter) as item:
        chat(input=[{"type": "computer_call", "id": "cu_1"}])
    assert item.value.param == "input[0]"


@pytest.mark.parametrize("reference", [{"type": "item_reference", "id": "msg_1"}, {"id": "msg_1"}])
def test_an_item_reference_not_expanded_by_the_store_is_not_found(
    reference: dict[str, Any],
) -> None:
    with pytest.raises(ItemNotFound) as caught:
        chat(input=[{"role": "user", "content": "Hi."}, reference])

    assert (caught.value.status_code, caught.value.code) == (404, "item_not_found")
    assert caught.value.param == "input[1]"
    assert caught.value.message == "Item with id 'msg_1' not found."


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (
            {"input": [{"role": "user", "content": [{"type": "input_txt", "text": "x"}]}]},
            "invalid_value",
            "input[0].content[0].type",
        ),
        ({"input": [{"role": "robot", "content": "x"}]}, "invalid_value", "input[0].role"),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "missing_required_parameter",
            "input[0].call_id",
        ),
        ({"input": "x", "temperature": 3}, "invalid_value", "temperature"),
        ({"input": "x", "max_output_tokens": 0}, "invalid_value", "max_output_tokens"),
        (
            {"input": "x", "tools": [{"type": "function"}]},
            "missing_required_parameter",
            "tools[0].name",
        ),
        (
            {"input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}},
            "invalid_value",
            "text.format",
        ),
        ({"input": []}, "invalid_value", "input"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "invalid_value",
            "input[0].content[0].image_url",
        ),
        ({"input": "x", "stream": "yes"}, "invalid_type", "stream"),
        ({"input": "x", "store": 1}, "invalid_type", "store"),
        ({"input": 5}, "invalid_type", "input"),
        ({"input": "x", "top_logprobs": "3"}, "invalid_type", "top_logprobs"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    body: dict[str, Any], code: str, param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        chat(**body)
    assert caught.value.code == code
    assert caught.value.param == param


def completion(
    message: dict[str, Any], finish_reason: str = "stop", **extra: Any
) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", **message},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": 11,
                "completion_tokens": 7,
                "total_tokens": 18,
                "prompt_tokens_details": {"cached_tokens": 3},
            },
            **extra,
        }
    )


def sdk_response(answer: ChatCompletion, **body: Any) -> sdk.Response:
    request = parse_request({"model": "m", "input": "x", **body})
    return sdk.Response.model_validate(orjson.loads(orjson.dumps(response_data(answer, request))))


def test_a_completion_is_a_completed_response_the_sdk_reads() -> None:
    answer = completion({"content": "A cat."}, x_gateway={"provider": "vlmrun", "job_id": "j1"})
    response = sdk_response(answer, instructions="Be brief.", temperature=0.2, metadata={"a": "b"})
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == "A cat."
    [message] = response.output
    assert message.type == "message"
    assert message.id.startswith("msg_")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 7)
    assert response.usage.total_tokens == 18
    assert response.usage.input_tokens_details.cached_tokens == 3
    assert (response.instructions, response.temperature) == ("Be brief.", 0.2)
    assert response.metadata == {"a": "b"}
    assert response.model_extra is not None
    assert response.model_extra["x_gateway"] == {"provider": "vlmrun", "job_id": "j1"}


def test_tool_calls_are_function_call_items_and_settings_are_echoed() -> None:
    call = {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    response = sdk_response(
        completion({"content": None, "tool_calls": [call]}, "tool_calls"),
        tools=tools,
        tool_choice="required",
        parallel_tool_calls=False,
    )
    [item] = response.output
    assert isinstance(item, sdk.ResponseFunctionToolCall)
    assert item.id is not None
    assert item.id.startswith("fc_")
    assert (item.call_id, item.name, item.arguments) == ("call_9", "f", '{"a":1}')
    assert response.tool_choice == "required"
    assert response.parallel_tool_calls is False
    assert [tool.model_dump(exclude_none=True) for tool in response.tools] == tools


def test_an_answer_cut_at_max_output_tokens_is_incomplete_with_the_reason() -> None:
    response = sdk_response(completion({"content": "A ca"}, "length"), max_output_tokens=2)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.max_output_tokens == 2
    [message] = response.output
    assert isinstance(message, sdk.ResponseOutputMessage)
    assert message.status == "incomplete"


@pytest.mark.parametrize(
    ("field", "value"),
    [("background", True), ("prompt", {"id": "pmpt_1"}), ("conversation", "conv_1")],
)
def test_services_no_upstream_offers_are_refused(field: str, value: object) -> None:
    request = parse_request({"model": "m", "input": "hi", field: value})

    with pytest.raises(UnsupportedParameter) as refused:
        to_chat_request(request)

    assert refused.value.param == field


def test_background_false_is_what_every_request_is() -> None:
    request = parse_request({"model": "m", "input": "hi", "background": False})

    assert to_chat_request(request).messages


def test_a_document_goes_as_chat_s_file_part_its_url_in_its_data() -> None:
    content = [
        {"type": "input_text", "text": "Compare"},
        {
            "type": "input_file",
            "filename": "a.pdf",
            "file_data": "data:application/pdf;base64,JVBERi0=",
        },
        {"type": "input_file", "file_url": "https://example.com/b.pdf", "detail": "high"},
    ]
    sent = chat(input=[{"role": "user", "content": content}])

    assert sent["messages"][0]["content"][1:] == [
        {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
        },
        {"type": "file", "file": {"file_data": "https://example.com/b.pdf"}},
    ]


def test_images_and_documents_a_tool_returned_follow_the_tool_messages() -> None:
    """Chat's tool messages hold text, and nothing may come between the tool messages of one
    turn: what the tools returned besides text comes in one user message after them."""
    pdf = {"type": "input_file", "filename": "r.pdf", "file_data": "JVBERi0="}
    sent = chat(
        input=[
            {"role": "user", "content": "Fetch both"},
            {"type": "function_call", "call_id": "c1", "name": "get", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "get", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": [IMAGE]},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "the report"}, pdf],
            },
        ]
    )
    messages = sent["messages"]

    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "user"]
    assert messages[2]["content"] == "(the output is the 1 file(s) that follow)"
    assert messages[3]["content"] == "the report"
    attached = messages[4]["content"]
    assert [part["type"] for part in attached] == ["text", "image_url", "text", "file"]
    assert "c1" in attached[0]["text"]
    assert attached[1]["image_url"]["url"] == IMAGE["image_url"]
    assert "c2" in attached[2]["text"]
    assert attached[3]["file"] == {"filename": "r.pdf", "file_data": "JVBERi0="}
