"""Takeoff through the gateway with the openai SDK: multipart with one image or JSON without,
sampling fields and options mapped, stops applied by the gateway, batches for `n`, raw-text
streams ended by the upstream's EOF, and upstream errors."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.envelope import assert_error
from tests.e2e.fakes.images import ImageHost
from tests.e2e.providers.deployments import QUESTION, ask, chunks_of, data_uri, image_bytes, text_of
from tests.e2e.providers.fakes import EOS, TAKEOFF_NOT_READY, FakeTakeoff, TakeoffReply

pytestmark = pytest.mark.e2e

MODEL = "takeoff-vision"
PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG", color="blue")


def post(gateway: str, **fields: Any) -> httpx.Response:
    body = {"model": MODEL, "messages": ask(), **fields}
    return httpx.post(f"{gateway}/v1/chat/completions", json=body, timeout=10)


# Images: multipart with exactly one image_data part


@pytest.mark.parametrize(
    ("declared", "data", "mime"),
    [("image/png", PNG, "image/png"), ("image/png", JPEG, "image/jpeg")],
    ids=["png", "jpeg-labelled-png"],
)
def test_data_uri_image_goes_as_multipart_with_its_bytes(
    takeoff_client: openai.OpenAI, takeoff: FakeTakeoff, declared: str, data: bytes, mime: str
) -> None:
    completion = takeoff_client.chat.completions.create(
        model=MODEL, messages=ask(QUESTION, data_uri(data, declared))
    )

    assert completion.choices[0].message.content == "A red square."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == MODEL
    [sent] = takeoff.received
    assert sent.path == "/image_generate"
    assert sent.refused is None
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert "authorization" not in sent.headers
    assert sorted(part.name for part in sent.parts) == ["image_data", "json_data"]
    payload_part = sent.part("json_data")
    assert payload_part.content_type == "application/json"
    assert payload_part.filename is None
    image = sent.part("image_data")
    assert image.data == data
    assert image.content_type == mime
    assert sent.json == {"text": QUESTION, "consumer_group": "primary"}


@pytest.mark.anyio
async def test_image_url_is_fetched_and_streamed_as_multipart(
    takeoff_async: openai.AsyncOpenAI, takeoff: FakeTakeoff, image_host: ImageHost
) -> None:
    url = image_host.put("photo", JPEG, "application/octet-stream")

    stream = await takeoff_async.chat.completions.create(
        model=MODEL, messages=ask(QUESTION, url), stream=True
    )
    async with stream:
        chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(chunks) == "A red square."
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert image_host.fetched == ["photo"]
    [sent] = takeoff.received
    assert sent.path == "/image_generate_stream"
    assert sent.refused is None
    image = sent.part("image_data")
    assert (image.data, image.content_type) == (JPEG, "image/jpeg")
    assert sent.part("json_data").content_type == "application/json"
    assert sent.json == {"text": QUESTION, "consumer_group": "primary"}


@pytest.mark.parametrize(("stream", "path"), [(False, "/generate"), (True, "/generate_stream")])
def test_text_only_request_goes_as_json(
    takeoff_gateway: str, takeoff: FakeTakeoff, stream: bool, path: str
) -> None:
    response = post(
        takeoff_gateway, messages=[{"role": "user", "content": "Hi there"}], stream=stream
    )

    assert response.status_code == 200, response.text
    [sent] = takeoff.received
    assert sent.path == path
    assert sent.headers["content-type"] == "application/json"
    assert sent.parts == []
    assert sent.json == {"text": "Hi there", "consumer_group": "primary"}


def test_two_images_are_refused_naming_the_second(
    takeoff_gateway: str, takeoff: FakeTakeoff
) -> None:
    messages = ask(QUESTION, data_uri(PNG, "image/png"), data_uri(JPEG, "image/jpeg"))

    response = post(takeoff_gateway, messages=messages)

    error = assert_error(
        response,
        400,
        "invalid_request_error",
        "too_many_images",
        param="messages[0].content[2].image_url",
    )
    assert "at most 1" in error["message"]
    assert takeoff.received == []


# The generate payload


@pytest.mark.parametrize("length_field", ["max_tokens", "max_completion_tokens"])
def test_sampling_fields_are_renamed_and_the_rest_dropped(
    takeoff_gateway: str, takeoff: FakeTakeoff, length_field: str
) -> None:
    fields = {
        length_field: 50,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["\n\n"],
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.2,
        "user": "someone",
    }

    response = post(takeoff_gateway, **fields)

    assert response.status_code == 200, response.text
    assert takeoff.received[0].json == {
        "text": QUESTION,
        "consumer_group": "primary",
        "max_new_tokens": 50,
        "sampling_temperature": 0.3,
        "sampling_topp": 0.9,
    }


SCHEMA = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"]}


@pytest.mark.parametrize(
    ("response_format", "json_schema"),
    [
        ({"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}, SCHEMA),
        ({"type": "json_object"}, {"type": "object"}),
    ],
    ids=["json_schema", "json_object"],
)
def test_response_format_becomes_json_schema(
    takeoff_gateway: str,
    takeoff: FakeTakeoff,
    response_format: dict[str, Any],
    json_schema: dict[str, Any],
) -> None:
    takeoff.script(TakeoffReply(tokens=['{"colour":', ' "red"}']))

    response = post(
        takeoff_gateway,
        messages=ask(QUESTION, data_uri(PNG, "image/png")),
        response_format=response_format,
    )

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == '{"colour": "red"}'
    assert takeoff.received[0].json == {
        "text": QUESTION,
        "consumer_group": "primary",
        "json_schema": json_schema,
    }


def test_options_set_consumer_group_and_chat_template(
    takeoff_gateway: str, takeoff: FakeTakeoff
) -> None:
    response = post(takeoff_gateway, model="takeoff-grouped")

    assert response.status_code == 200, response.text
    assert takeoff.received[0].json == {
        "text": QUESTION,
        "consumer_group": "vision-readers",
        "use_chat_template": True,
    }


def test_conversation_is_flattened_into_text(
    takeoff_client: openai.OpenAI, takeoff: FakeTakeoff
) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": data_uri(PNG, "image/png")}},
            ],
        },
    ]

    takeoff_client.chat.completions.create(model=MODEL, messages=messages)

    [sent] = takeoff.received
    assert sent.path == "/image_generate"
    assert sent.json is not None
    assert (
        sent.json["text"]
        == "Be brief.\n\nUser: Hi\nAssistant: Hello!\n\nUser: What is in this picture?"
    )


# Stops, applied by the gateway


def test_stop_cuts_a_buffered_answer(takeoff_client: openai.OpenAI, takeoff: FakeTakeoff) -> None:
    takeoff.script(TakeoffReply(tokens=["The cat sat.", " END", " and more"]))

    completion = takeoff_client.chat.completions.create(model=MODEL, messages=ask(), stop="END")

    assert completion.choices[0].message.content == "The cat sat. "
    assert completion.choices[0].finish_reason == "stop"
    assert takeoff.received[0].json is not None
    assert "stop" not in takeoff.received[0].json


@pytest.mark.anyio
async def test_stop_split_across_two_tokens_cuts_the_stream(
    takeoff_async: openai.AsyncOpenAI, takeoff: FakeTakeoff
) -> None:
    takeoff.script(TakeoffReply(tokens=["Hello", " wor", "ld", " ST", "OP", " never", " sent"]))

    stream = await takeoff_async.chat.completions.create(
        model=MODEL, messages=ask(), stop=["STOP", "\n\n"], stream=True
    )
    async with stream:
        chunks = [chunk async for chunk in stream]

    assert text_of(chunks) == "Hello world "
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert not any("ST" in piece for piece in pieces)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "reply",
    [TakeoffReply(eos=True), TakeoffReply(tokens=["A", " red", " square", ".</s>"])],
    ids=["eos-token", "eos-in-last-token"],
)
def test_trailing_end_of_sequence_is_stripped(
    takeoff_client: openai.OpenAI, takeoff: FakeTakeoff, reply: TakeoffReply, stream: bool
) -> None:
    takeoff.script(reply)

    if stream:
        with takeoff_client.chat.completions.create(model=MODEL, messages=ask(), stream=True) as s:
            content = text_of(list(s))
    else:
        completion = takeoff_client.chat.completions.create(model=MODEL, messages=ask())
        content = completion.choices[0].message.content or ""

    assert content == "A red square."
    assert EOS not in content


# n > 1 as a batch


def test_n_is_a_batch_of_prompts_read_back_as_choices(
    takeoff_client: openai.OpenAI, takeoff: FakeTakeoff
) -> None:
    takeoff.script(TakeoffReply(batch=[["A red", " square."], ["A crimson", " block."]]))

    completion = takeoff_client.chat.completions.create(
        model=MODEL, messages=ask(QUESTION, data_uri(PNG, "image/png")), n=2
    )

    assert [choice.index for choice in completion.choices] == [0, 1]
    assert [choice.message.content for choice in completion.choices] == [
        "A red square.",
        "A crimson block.",
    ]
    [sent] = takeoff.received
    assert sent.path == "/image_generate"
    assert sent.json is not None
    assert sent.json["text"] == [QUESTION, QUESTION]


@pytest.mark.anyio
async def test_streamed_batch_ids_become_choice_indexes(
    takeoff_async: openai.AsyncOpenAI, takeoff: FakeTakeoff
) -> None:
    takeoff.script(TakeoffReply(batch=[["A red", " square", "."], ["A crimson", " block", "</s>"]]))

    stream = await takeoff_async.chat.completions.create(
        model=MODEL, messages=ask(QUESTION, data_uri(PNG, "image/png")), n=2, stream=True
    )
    async with stream:
        chunks = [chunk async for chunk in stream]

    assert text_of(chunks, 0) == "A red square."
    assert text_of(chunks, 1) == "A crimson block"
    finishes = {
        c.index: c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason
    }
    assert finishes == {0: "stop", 1: "stop"}
    [sent] = takeoff.received
    assert sent.path == "/image_generate_stream"
    assert sent.json is not None
    assert sent.json["text"] == [QUESTION, QUESTION]


# Streams: raw text, ended by EOF


def test_upstream_eof_ends_the_stream_with_finish_usage_and_done(
    takeoff_gateway: str, takeoff: FakeTakeoff
) -> None:
    takeoff.script(TakeoffReply(tokens=["Line one", "\n", "Line two", " "]))

    response = post(takeoff_gateway, stream=True, stream_options={"include_usage": True})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks, done = chunks_of(response.text)
    assert done
    *answer, usage = chunks
    assert answer[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in answer)
    assert text == "Line one\nLine two "
    assert answer[-1]["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 0
    assert {chunk["id"] for chunk in chunks} == {answer[0]["id"]}


def test_stream_that_breaks_off_is_an_error_in_the_stream(
    takeoff_client: openai.OpenAI, takeoff: FakeTakeoff
) -> None:
    takeoff.script(TakeoffReply(tokens=["A", " red", " square", "."], break_after=2))
    received: list[str] = []

    stream = takeoff_client.chat.completions.create(model=MODEL, messages=ask(), stream=True)
    with stream, pytest.raises(openai.APIError) as raised:
        received.extend(c.choices[0].delta.content or "" for c in stream if c.choices)

    assert "".join(received) == "A red"
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["type"] == "upstream_error"
    assert raised.value.body["code"] == "upstream_failed"


def test_stream_that_breaks_off_has_no_done(takeoff_gateway: str, takeoff: FakeTakeoff) -> None:
    takeoff.script(TakeoffReply(break_after=3))

    response = post(takeoff_gateway, stream=True)

    chunks, done = chunks_of(response.text)
    assert not done
    assert chunks[-1]["error"]["code"] == "upstream_failed"
    assert not any(c.get("choices") and c["choices"][0]["finish_reason"] for c in chunks)


# Upstream errors


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("status", "code", "type_", "gateway_status"),
    [
        (400, "upstream_rejected", "invalid_request_error", 400),
        (422, "upstream_rejected", "invalid_request_error", 400),
        (503, "upstream_failed", "upstream_error", 502),
    ],
)
def test_upstream_error_statuses_are_mapped(
    takeoff_gateway: str,
    takeoff: FakeTakeoff,
    stream: bool,
    status: int,
    code: str,
    type_: str,
    gateway_status: int,
) -> None:
    takeoff.script(TakeoffReply(status=status, error=f"Malformed request body ({status})"))

    response = post(
        takeoff_gateway, messages=ask(QUESTION, data_uri(PNG, "image/png")), stream=stream
    )

    error = assert_error(response, gateway_status, type_, code)
    expected = TAKEOFF_NOT_READY if status == 503 else f"Malformed request body ({status})"
    assert expected in error["message"]
    assert len(takeoff.received) == 1


def test_sdk_sees_an_upstream_rejection_as_bad_request(
    takeoff_client: openai.OpenAI, takeoff: FakeTakeoff
) -> None:
    takeoff.script(TakeoffReply(status=422, error="prompt_max_tokens must be positive"))

    with pytest.raises(openai.BadRequestError) as raised:
        takeoff_client.chat.completions.create(model=MODEL, messages=ask())

    assert isinstance(raised.value.body, dict)
    assert raised.value.body["code"] == "upstream_rejected"
    assert "prompt_max_tokens must be positive" in raised.value.body["message"]
