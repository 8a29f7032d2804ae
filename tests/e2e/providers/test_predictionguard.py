"""Prediction Guard through the gateway with the openai SDK: images inlined as data URIs,
streams with images served by one buffered call, both reply shapes, gaps filled, its error
bodies mapped, and `n` by parallel calls."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionToolParam

from tests.e2e.conftest import MakeClient, StartGateway
from tests.e2e.deployments import entry
from tests.e2e.envelope import assert_error
from tests.e2e.fakes.images import ImageHost
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.e2e.providers.deployments import (
    PG_KEY,
    PG_MODEL,
    QUESTION,
    ask,
    chunks_of,
    data_uri,
    image_bytes,
    image_size,
    pg_entry,
    text_of,
)
from tests.e2e.providers.fakes import PG_FORBIDDEN, FakePredictionGuard, PGReply

pytestmark = pytest.mark.e2e

MODEL = "pg-vision"
PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG", color="blue")
ANSWER = "A red square on a white background."
TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "describe",
            "description": "Record what the image shows.",
            "parameters": {"type": "object", "properties": {"subject": {"type": "string"}}},
        },
    }
]


def post(gateway: str, **fields: Any) -> httpx.Response:
    body = {"model": MODEL, "messages": ask(QUESTION, data_uri(PNG, "image/png")), **fields}
    return httpx.post(f"{gateway}/v1/chat/completions", json=body, timeout=10)


def assert_no_key(text: str) -> None:
    assert PG_KEY not in text


# Images: only base64 data URIs, in the formats it reads


@pytest.mark.parametrize("source", ["url", "data-uri"])
def test_image_goes_as_a_data_uri_of_its_real_type(
    pg_client: openai.OpenAI, pg: FakePredictionGuard, image_host: ImageHost, source: str
) -> None:
    # Labelled PNG either way; the bytes are a JPEG.
    if source == "url":
        url = image_host.put("photo.png", JPEG, "image/png")
    else:
        url = data_uri(JPEG, "image/png")

    completion = pg_client.chat.completions.create(model=MODEL, messages=ask(QUESTION, url))

    assert completion.choices[0].message.content == ANSWER
    assert completion.model == MODEL
    [sent] = pg.received
    assert sent.refused is None
    assert sent.path == "/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {PG_KEY}"
    assert sent.images == [("image/jpeg", JPEG)]
    assert sent.json is not None
    assert sent.json["model"] == PG_MODEL
    assert sent.json["messages"][0]["content"][0] == {"type": "text", "text": QUESTION}
    assert image_host.fetched == (["photo.png"] if source == "url" else [])


@pytest.mark.parametrize("source", ["url", "data-uri"])
@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_gif_and_webp_are_converted_to_png(
    pg_client: openai.OpenAI, pg: FakePredictionGuard, image_host: ImageHost, fmt: str, source: str
) -> None:
    data = image_bytes(fmt, 30, 20)
    mime = f"image/{fmt.lower()}"
    url = (
        image_host.put(f"a.{fmt.lower()}", data, mime) if source == "url" else data_uri(data, mime)
    )

    pg_client.chat.completions.create(model=MODEL, messages=ask(QUESTION, url))

    [(sent_mime, sent_bytes)] = pg.received[0].images
    assert sent_mime == "image/png"
    assert image_size(sent_bytes) == ("PNG", (30, 20))


# Streaming


@pytest.mark.anyio
async def test_stream_with_an_image_is_one_buffered_call_streamed_back(
    pg_async: openai.AsyncOpenAI, pg: FakePredictionGuard, image_host: ImageHost
) -> None:
    url = image_host.put("photo.jpg", JPEG, "image/jpeg")

    stream = await pg_async.chat.completions.create(
        model=MODEL,
        messages=ask(QUESTION, url),
        stream=True,
        stream_options={"include_usage": True},
    )
    async with stream:
        chunks = [chunk async for chunk in stream]

    [sent] = pg.received
    assert sent.refused is None
    assert sent.json is not None
    assert not sent.json.get("stream")
    assert "stream_options" not in sent.json
    assert sent.images == [("image/jpeg", JPEG)]
    *answer, usage = chunks
    assert answer[0].choices[0].delta.role == "assistant"
    assert text_of(answer) == ANSWER
    assert answer[-1].choices[0].finish_reason == "stop"
    assert usage.choices == []
    assert usage.usage is not None
    assert (usage.usage.prompt_tokens, usage.usage.completion_tokens) == (21, 9)
    assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert {chunk.model for chunk in chunks} == {MODEL}


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_with_an_image_is_framed_like_any_stream(
    pg_gateway: str, pg: FakePredictionGuard, include_usage: bool
) -> None:
    options = {"stream_options": {"include_usage": True}} if include_usage else {}

    response = post(pg_gateway, stream=True, **options)

    assert response.status_code == 200, response.text
    chunks, done = chunks_of(response.text)
    assert done
    role, *content, finish = chunks[:-1] if include_usage else chunks
    assert role["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"]["content"] for c in content) == ANSWER
    assert finish["choices"][0]["finish_reason"] == "stop"
    if include_usage:
        assert chunks[-1]["choices"] == []
        assert chunks[-1]["usage"]["total_tokens"] == 30
    assert len(pg.received) == 1


@pytest.mark.parametrize("done", [True, False], ids=["done", "no-done"])
def test_stream_without_images_is_relayed(
    pg_client: openai.OpenAI, pg: FakePredictionGuard, done: bool
) -> None:
    deltas = ["A ", "poem ", "about ", "squares."]
    pg.script(PGReply(deltas=deltas, done=done))

    with pg_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Write a poem."}], stream=True
    ) as stream:
        chunks = list(stream)

    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert pieces == deltas
    assert chunks[-1].choices[0].finish_reason == "stop"
    [sent] = pg.received
    assert sent.json is not None
    assert sent.json["stream"] is True
    assert sent.images == []


# The request body


def test_max_tokens_becomes_max_completion_tokens_and_unknown_fields_are_dropped(
    pg_gateway: str, pg: FakePredictionGuard
) -> None:
    response = post(
        pg_gateway,
        max_tokens=64,
        temperature=0.2,
        top_p=0.8,
        stop=["\n"],
        seed=3,
        user="someone",
        metadata={"team": "a"},
    )

    assert response.status_code == 200, response.text
    [sent] = pg.received
    assert sent.json is not None
    assert set(sent.json) == {
        "model",
        "messages",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
    }
    assert sent.json["max_completion_tokens"] == 64
    assert (sent.json["temperature"], sent.json["top_p"], sent.json["stop"]) == (0.2, 0.8, ["\n"])


def test_tools_are_passed_on(pg_client: openai.OpenAI, pg: FakePredictionGuard) -> None:
    completion = pg_client.chat.completions.create(
        model=MODEL, messages=ask(), tools=TOOLS, tool_choice="auto"
    )

    assert completion.choices[0].message.content == ANSWER
    [sent] = pg.received
    assert sent.json is not None
    assert sent.json["tools"] == TOOLS
    assert sent.json["tool_choice"] == "auto"


def test_tool_calls_in_the_reply_reach_the_client(
    pg_client: openai.OpenAI, pg: FakePredictionGuard
) -> None:
    call = {
        "id": "call_7f3a",
        "type": "function",
        "function": {"name": "describe", "arguments": '{"subject": "a red square"}'},
    }
    pg.script(PGReply(text="", tool_calls=[call], finish_reason="tool_calls"))

    completion = pg_client.chat.completions.create(model=MODEL, messages=ask(), tools=TOOLS)

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    assert [c.model_dump() for c in choice.message.tool_calls] == [call]


def test_logprobs_are_refused(pg_gateway: str, pg: FakePredictionGuard) -> None:
    response = post(pg_gateway, logprobs=True)

    assert_error(response, 400, "invalid_request_error", "unsupported_parameter", param="logprobs")
    assert pg.received == []


# Reply shapes


@pytest.mark.parametrize("stream", [False, True])
def test_legacy_text_reply_is_read(
    pg_client: openai.OpenAI, pg: FakePredictionGuard, stream: bool
) -> None:
    pg.script(PGReply(text="An old-style answer.", legacy=True))
    messages = ask(QUESTION, data_uri(PNG, "image/png"))

    if stream:
        with pg_client.chat.completions.create(model=MODEL, messages=messages, stream=True) as s:
            content = text_of(list(s))
    else:
        completion = pg_client.chat.completions.create(model=MODEL, messages=messages)
        assert completion.object == "chat.completion"
        assert completion.id.startswith("chatcmpl-") or completion.id.startswith("cmpl-")
        content = completion.choices[0].message.content or ""

    assert content == "An old-style answer."


def test_missing_usage_and_finish_reason_are_filled(
    pg_gateway: str, pg: FakePredictionGuard
) -> None:
    pg.script(PGReply(usage=None, finish_reason=None))

    response = post(pg_gateway)

    assert response.status_code == 200, response.text
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["choices"][0]["message"] == {
        "role": "assistant",
        "content": ANSWER,
        "refusal": None,
        "annotations": [],
    }
    assert completion["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


@pytest.mark.anyio
async def test_missing_usage_is_zeros_in_a_stream(
    pg_async: openai.AsyncOpenAI, pg: FakePredictionGuard
) -> None:
    pg.script(PGReply(usage=None, finish_reason=None))

    stream = await pg_async.chat.completions.create(
        model=MODEL,
        messages=ask(QUESTION, data_uri(PNG, "image/png")),
        stream=True,
        stream_options={"include_usage": True},
    )
    async with stream:
        chunks = [chunk async for chunk in stream]

    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 0


# Errors: `{"error": "<string>"}`


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("status", "error", "gateway_status", "type_", "code"),
    [
        (400, "required fields are missing", 400, "invalid_request_error", "upstream_rejected"),
        (403, PG_FORBIDDEN, 502, "upstream_error", "upstream_auth_failed"),
    ],
)
def test_error_bodies_are_mapped(
    pg_gateway: str,
    pg: FakePredictionGuard,
    stream: bool,
    status: int,
    error: str,
    gateway_status: int,
    type_: str,
    code: str,
) -> None:
    pg.script(PGReply(status=status, error=error))
    # Without an image, so that a stream is a real upstream stream refused before its start.
    messages = [{"role": "user", "content": "Hi"}]

    response = post(pg_gateway, messages=messages, stream=stream)

    envelope = assert_error(response, gateway_status, type_, code)
    if status == 400:
        assert error in envelope["message"]
    assert_no_key(response.text)


@pytest.mark.anyio
async def test_error_while_an_image_stream_waits_reaches_the_sdk(
    pg_async: openai.AsyncOpenAI, pg: FakePredictionGuard
) -> None:
    pg.script(PGReply(status=400, error="image is too large for this model"))

    async def read_stream() -> None:
        stream = await pg_async.chat.completions.create(
            model=MODEL, messages=ask(QUESTION, data_uri(PNG, "image/png")), stream=True
        )
        async with stream:
            async for _ in stream:
                pass

    with pytest.raises(openai.APIError) as raised:
        await read_stream()

    assert isinstance(raised.value.body, dict)
    assert raised.value.body["code"] == "upstream_rejected"
    assert "image is too large for this model" in raised.value.body["message"]


# n > 1: parallel calls


@pytest.mark.anyio
async def test_n_is_served_by_parallel_calls_merged_into_choices(
    pg_async: openai.AsyncOpenAI, pg: FakePredictionGuard
) -> None:
    pg.script(
        PGReply(text="First answer.", usage=(10, 2)), PGReply(text="Second answer.", usage=(10, 3))
    )

    completion = await pg_async.chat.completions.create(
        model=MODEL, messages=ask(QUESTION, data_uri(PNG, "image/png")), n=2
    )

    assert [choice.index for choice in completion.choices] == [0, 1]
    contents = {choice.message.content for choice in completion.choices}
    assert contents == {"First answer.", "Second answer."}
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (20, 5)
    assert len(pg.received) == 2
    for sent in pg.received:
        assert sent.json is not None
        assert "n" not in sent.json
        assert sent.images == [("image/png", PNG)]


def test_n_streamed_with_an_image_gives_each_choice(
    pg_client: openai.OpenAI, pg: FakePredictionGuard
) -> None:
    pg.script(PGReply(text="First answer."), PGReply(text="Second answer."))

    with pg_client.chat.completions.create(
        model=MODEL, messages=ask(QUESTION, data_uri(PNG, "image/png")), n=2, stream=True
    ) as stream:
        chunks = list(stream)

    assert {text_of(chunks, 0), text_of(chunks, 1)} == {"First answer.", "Second answer."}
    finishes = {
        c.index: c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason
    }
    assert finishes == {0: "stop", 1: "stop"}
    assert len(pg.received) == 2
    assert all(not sent.json or not sent.json.get("stream") for sent in pg.received)


@pytest.mark.parametrize(
    "prefix",
    [
        "DATA:image/png;base64,",
        "data:IMAGE/PNG;base64,",
        "data:image/png;BASE64,",
        "data:image/png;name=cat.png;base64,",
    ],
)
def test_data_uri_spellings_reach_it_in_the_documented_form(
    pg_client: openai.OpenAI, pg: FakePredictionGuard, prefix: str
) -> None:
    url = prefix + data_uri(PNG, "image/png").split(",", 1)[1]

    pg_client.chat.completions.create(model=MODEL, messages=ask(QUESTION, url))

    [sent] = pg.received
    assert sent.refused is None
    assert sent.json is not None
    sent_url = sent.json["messages"][0]["content"][1]["image_url"]["url"]
    assert sent_url.startswith("data:image/png;base64,")
    assert sent.images == [("image/png", PNG)]


# Failures before the first byte


def test_a_stream_with_an_image_fails_over_on_an_upstream_503(
    start_gateway: StartGateway,
    pg: FakePredictionGuard,
    openai_upstream: FakeUpstream,
    make_client: MakeClient,
) -> None:
    """Its one whole call is made before the stream starts, so an upstream failure is still
    an HTTP status, and the next entry of the group answers."""
    pg.script(PGReply(status=503, error="overloaded"))
    url = start_gateway([pg_entry(MODEL, pg), entry(MODEL, openai_upstream)])
    client = make_client(url)

    stream = client.chat.completions.create(
        model=MODEL, messages=ask(QUESTION, data_uri(PNG, "image/png")), stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert len(pg.received) == 1
    assert [request.model for request in openai_upstream.received] == [MODEL]
    assert text == Reply().text


# Ids as OpenAI's


@pytest.mark.parametrize("legacy", [False, True])
def test_completion_ids_are_openai_style_and_the_upstreams_is_kept(
    pg_client: openai.OpenAI, pg: FakePredictionGuard, legacy: bool
) -> None:
    pg.script(PGReply(legacy=legacy))

    completion = pg_client.chat.completions.create(
        model=MODEL, messages=ask(QUESTION, data_uri(PNG, "image/png"))
    )

    assert completion.id.startswith("chatcmpl-")
    extension = (completion.model_extra or {})["x_gateway"]
    assert extension["upstream_id"].startswith("cmpl-" if legacy else "chat-")


def test_merged_answers_and_every_chunk_have_openai_style_ids(pg_client: openai.OpenAI) -> None:
    merged = pg_client.chat.completions.create(
        model=MODEL, messages=ask(QUESTION, data_uri(PNG, "image/png")), n=2
    )
    chunks = list(
        pg_client.chat.completions.create(
            model=MODEL, messages=ask(QUESTION), stream=True, stream_options={"include_usage": True}
        )
    )

    assert merged.id.startswith("chatcmpl-")
    assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert chunks[0].id.startswith("chatcmpl-")
