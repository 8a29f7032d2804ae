"""A streamed chat answer as Responses events, in OpenAI's order, readable by the SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, get_args

import openai.types.responses as sdk
import orjson
import pytest
from pydantic import BaseModel, TypeAdapter

from app.config import ResponsesConfig
from app.errors import GatewayError, UpstreamError, UpstreamTimeout
from app.responses.events import ResponseEvent, ResponseStream, encode
from app.responses.objects import OutputItem, Response
from app.responses.schemas import parse_request
from app.wire.schemas import ChatCompletionChunk

pytestmark = pytest.mark.anyio

# Each stream event type of the SDK's union, by its `type` value.
SDK_EVENTS: dict[str, type[BaseModel]] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in get_args(get_args(sdk.ResponseStreamEvent)[0])
}


def chunk(*choices: dict[str, Any], usage: dict[str, int] | None = None) -> ChatCompletionChunk:
    body = {"id": "c", "created": 1, "model": "m", "choices": list(choices), "usage": usage}
    return ChatCompletionChunk.model_validate(body)


ROLE = chunk({"index": 0, "delta": {"role": "assistant", "content": ""}})
USAGE = chunk(usage={"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})


def text(piece: str) -> ChatCompletionChunk:
    return chunk({"index": 0, "delta": {"content": piece}})


def finish(reason: str) -> ChatCompletionChunk:
    return chunk({"index": 0, "delta": {}, "finish_reason": reason})


def call(index: int, **fields: Any) -> ChatCompletionChunk:
    return chunk({"index": 0, "delta": {"tool_calls": [{"index": index, **fields}]}})


async def chunks_of(
    *items: ChatCompletionChunk | GatewayError,
) -> AsyncIterator[ChatCompletionChunk]:
    for item in items:
        if isinstance(item, GatewayError):
            raise item
        yield item


async def run(
    *items: ChatCompletionChunk | GatewayError,
    limits: ResponsesConfig | None = None,
    **body: Any,
) -> tuple[ResponseStream, list[Any]]:
    """The stream's events, each checked against the SDK's model of its type."""
    request = parse_request({"model": "m", "input": "x", "stream": True, **body})
    stream = ResponseStream(request, chunks_of(*items), limits=limits)
    events: list[ResponseEvent] = [event async for batch in stream.batches() for event in batch]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    return stream, [
        SDK_EVENTS[event.type].model_validate(orjson.loads(event.data)) for event in events
    ]


async def test_a_text_answer_streams_in_openai_order() -> None:
    stream, events = await run(ROLE, text("A "), text("cat."), finish("stop"), USAGE)
    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0].response.status == "in_progress"
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["A ", "cat."]
    assert events[6].text == "A cat."
    done = events[-1].response
    assert done.status == "completed"
    assert done.output_text == "A cat."
    assert done.usage is not None
    assert (done.usage.input_tokens, done.usage.output_tokens) == (5, 3)
    item_id = events[2].item.id
    assert {e.item_id for e in events[3:8]} == {item_id}
    assert done.output[0].id == item_id
    assert (stream.response["id"], stream.response["status"]) == (done.id, "completed")


async def test_tool_calls_stream_as_function_call_items_with_argument_deltas() -> None:
    stream, events = await run(
        ROLE,
        text("Checking."),
        call(0, id="call_a", type="function", function={"name": "weather", "arguments": ""}),
        call(0, function={"arguments": '{"city":'}),
        call(0, function={"arguments": '"Paris"}'}),
        call(1, id="call_b", type="function", function={"name": "time", "arguments": "{}"}),
        finish("tool_calls"),
        USAGE,
    )
    kinds = [event.type for event in events]
    assert kinds[2:9] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
    ]
    deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert [(e.output_index, e.delta) for e in deltas] == [
        (1, '{"city":'),
        (1, '"Paris"}'),
        (2, "{}"),
    ]
    dones = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [(e.output_index, e.arguments) for e in dones] == [(1, '{"city":"Paris"}'), (2, "{}")]
    assert kinds[-1] == "response.completed"
    final = sdk.Response.model_validate(stream.response)
    calls = [item for item in final.output if isinstance(item, sdk.ResponseFunctionToolCall)]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_a", "weather", '{"city":"Paris"}'),
        ("call_b", "time", "{}"),
    ]
    assert all(c.id and c.id.startswith("fc_") for c in calls)


async def test_an_answer_cut_short_ends_with_response_incomplete() -> None:
    stream, events = await run(ROLE, text("A ca"), finish("length"), USAGE, max_output_tokens=2)
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert events[-2].item.status == "incomplete"
    assert stream.response["status"] == "incomplete"


async def test_an_empty_answer_still_has_its_message_item() -> None:
    _, events = await run(ROLE, finish("stop"), USAGE)
    assert [event.type for event in events][2:-1] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert events[-1].response.output_text == ""


async def test_a_failure_mid_stream_is_an_error_event_then_response_failed() -> None:
    broken = UpstreamError("the upstream stream broke off")
    stream, events = await run(ROLE, text("A "), broken)
    assert [event.type for event in events][-2:] == ["error", "response.failed"]
    error = events[-2]
    assert (error.code, error.message) == ("upstream_failed", "the upstream stream broke off")
    failed = events[-1].response
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.message == "the upstream stream broke off"
    assert failed.output_text == "A "
    assert stream.response["status"] == "failed"
    assert stream.error is broken


async def test_an_answer_over_its_character_cap_fails_the_stream() -> None:
    limits = ResponsesConfig(max_answer_chars=5)

    stream, events = await run(ROLE, text("abc"), text("defg"), text("never"), limits=limits)

    assert [event.type for event in events][-2:] == ["error", "response.failed"]
    assert stream.error is not None
    assert stream.error.code == "upstream_failed"
    assert "responses.max_answer_chars" in stream.error.message
    assert events[-1].response.output_text == "abc"


async def test_more_output_items_than_the_cap_fail_the_stream() -> None:
    limits = ResponsesConfig(max_output_items=2)
    calls = [call(i, id=f"call_{i}", function={"name": "f", "arguments": "{}"}) for i in range(3)]

    stream, events = await run(ROLE, *calls, limits=limits)

    assert stream.error is not None
    assert "responses.max_output_items" in stream.error.message
    assert len(events[-1].response.output) == 2


async def test_a_failure_before_the_first_event_is_raised_for_an_http_status() -> None:
    request = parse_request({"model": "m", "input": "x", "stream": True})
    stream = ResponseStream(request, chunks_of(UpstreamTimeout("too slow")))
    batches = stream.batches()
    with pytest.raises(UpstreamTimeout):
        await anext(batches)


async def test_events_are_encoded_with_an_event_line_and_no_done() -> None:
    request = parse_request({"model": "m", "input": "x", "stream": True})
    stream = ResponseStream(request, chunks_of(ROLE, text("hi"), finish("stop"), USAGE))
    body = b"".join([encode(event) async for batch in stream.batches() for event in batch])
    frames = body.split(b"\n\n")
    assert frames[-1] == b""
    assert frames[0].startswith(b"event: response.created\ndata: {")
    assert all(frame.split(b"\n")[0].startswith(b"event: ") for frame in frames[:-1])
    assert b"[DONE]" not in body


async def test_the_events_ready_together_come_in_one_batch() -> None:
    request = parse_request({"model": "m", "input": "x", "stream": True})
    stream = ResponseStream(
        request, chunks_of(ROLE, text("A "), text("cat."), finish("stop"), USAGE)
    )
    batches = [[event.type for event in batch] async for batch in stream.batches()]
    assert batches == [
        ["response.created", "response.in_progress"],
        [
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
        ],
        ["response.output_text.delta"],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ],
    ]
    # A first chunk that fails the stream keeps the opening events before the failure.
    over = ResponsesConfig(max_answer_chars=3)
    failing = ResponseStream(request, chunks_of(text("too long")), limits=over).batches()
    [batch] = [[event.type for event in batch] async for batch in failing]
    assert batch == ["response.created", "response.in_progress", "error", "response.failed"]


async def test_each_event_shows_its_objects_as_they_were_in_the_wire_models_form() -> None:
    request = parse_request({"model": "m", "input": "x", "stream": True, "temperature": 0.5})
    answer = chunks_of(
        ROLE,
        text("A "),
        call(0, id="c1", function={"name": "look", "arguments": '{"a":'}),
        call(0, function={"arguments": "1}"}),
        finish("tool_calls"),
        USAGE,
    )
    events = [event async for batch in ResponseStream(request, answer).batches() for event in batch]
    shown = {event.type: orjson.loads(event.data) for event in events}
    # Made when the event was: the item just opened, not as it ended.
    assert shown["response.output_item.added"]["item"]["status"] == "in_progress"
    assert shown["response.output_item.added"]["item"]["arguments"] == ""
    assert shown["response.output_item.done"]["item"]["arguments"] == '{"a":1}'
    assert shown["response.created"]["response"]["status"] == "in_progress"
    # Every field, in the wire models' order, `null`s included.
    wire: tuple[tuple[str, TypeAdapter[Any]], ...] = (
        ("response", TypeAdapter(Response)),
        ("item", TypeAdapter(OutputItem)),
    )
    for kind, model in wire:
        for event in (e for e in events if f'"{kind}":'.encode() in e.data):
            value = orjson.loads(event.data)[kind]
            assert orjson.dumps(value) == model.dump_json(model.validate_python(value))
