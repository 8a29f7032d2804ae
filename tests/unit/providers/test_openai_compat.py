"""The OpenAI-compatible pass-through against a mocked upstream: what goes out, what comes back."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import respx

from app.config import ImagesConfig
from app.errors import (
    GatewayError,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.providers.base import Call, ProviderContext
from app.providers.openai_compat import OpenAICompatible
from app.state import MemoryState
from app.wire.schemas import ChatCompletionChunk
from tests.conftest import make_config
from tests.unit.conftest import chat_request
from tests.unit.seam import answer, chunks_of

pytestmark = [pytest.mark.anyio, pytest.mark.respx(base_url="http://upstream.test/v1")]

BASE_URL = "http://upstream.test/v1"
IMAGE = {"type": "image_url", "image_url": {"url": "https://x.test/cat.png", "detail": "low"}}
COMPLETION = {
    "id": "chatcmpl-upstream",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "Qwen/Qwen2-VL-7B",
    "system_fingerprint": "fp_1",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "A cat."}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


def provider(transport: httpx.AsyncBaseTransport, **entry: Any) -> OpenAICompatible:
    config = make_config([{"name": "vision", "provider": "openai", "base_url": BASE_URL, **entry}])
    context = ProviderContext(transport, ImagesConfig(), MemoryState())
    return OpenAICompatible(config.models[0], context)


def vision_call(**fields: Any) -> Call:
    request = chat_request([{"type": "text", "text": "What is this?"}, IMAGE], **fields)
    return Call(request.model_copy(update={"model": "vision"}), "Qwen/Qwen2-VL-7B")


def sent(route: respx.Route) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(route.calls.last.request.content)
    return body


def sse(*events: dict[str, Any] | str | bytes) -> httpx.Response:
    """An event stream: dicts and strings are `data:` payloads, bytes go on the wire as they are."""
    body = b"".join(
        e
        if isinstance(e, bytes)
        else event_line(e.encode() if isinstance(e, str) else orjson.dumps(e))
        for e in events
    )
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


def event_line(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


def delta_event(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-upstream",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "Qwen/Qwen2-VL-7B",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


USAGE_EVENT = {
    "id": "chatcmpl-upstream",
    "object": "chat.completion.chunk",
    "created": 1700000000,
    "model": "Qwen/Qwen2-VL-7B",
    "choices": [],
    "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
}


async def collect(chunks: AsyncIterator[ChatCompletionChunk]) -> list[ChatCompletionChunk]:
    return [chunk async for chunk in chunks]


async def collect_into(
    chunks: AsyncIterator[ChatCompletionChunk], into: list[ChatCompletionChunk]
) -> None:
    async for chunk in chunks:
        into.append(chunk)


async def test_request_goes_out_as_sent_with_the_upstream_model(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post("/chat/completions").mock(
        return_value=httpx.Response(200, json=COMPLETION)
    )
    call = vision_call(temperature=0.2, max_tokens=50, reasoning_effort="low", seed=7)

    await answer(provider(transport), call)

    body = sent(route)
    assert body["model"] == "Qwen/Qwen2-VL-7B"
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE]}
    ]
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.2, 50, 7)
    assert body["reasoning_effort"] == "low"
    assert "stream" not in body
    assert "stream_options" not in body


async def test_tools_and_response_format_are_passed_through(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post("/chat/completions").mock(
        return_value=httpx.Response(200, json=COMPLETION)
    )
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    response_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}}
    call = vision_call(tools=tools, tool_choice="auto", response_format=response_format, n=2)

    await answer(provider(transport), call)

    body = sent(route)
    assert body["tools"] == tools
    assert body["tool_choice"] == "auto"
    assert body["response_format"] == response_format
    assert body["n"] == 2


async def test_api_key_goes_in_the_authorization_header(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post("/chat/completions").mock(
        return_value=httpx.Response(200, json=COMPLETION)
    )

    await answer(provider(transport, api_key="sk-upstream"), vision_call())

    headers = route.calls.last.request.headers
    assert headers["authorization"] == "Bearer sk-upstream"
    assert headers["content-type"] == "application/json"


async def test_no_key_sends_no_authorization_header(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post("/chat/completions").mock(
        return_value=httpx.Response(200, json=COMPLETION)
    )

    await answer(provider(transport), vision_call())

    assert "authorization" not in route.calls.last.request.headers


async def test_reply_carries_the_clients_model_id(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))

    completion = await answer(provider(transport), vision_call())

    assert completion.model == "vision"
    assert completion.id == "chatcmpl-upstream"
    assert completion.choices[0].message.content == "A cat."
    assert completion.usage.total_tokens == 15
    assert completion.model_dump()["system_fingerprint"] == "fp_1"


async def test_created_status_is_success(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("/chat/completions").mock(return_value=httpx.Response(201, json=COMPLETION))

    completion = await answer(provider(transport), vision_call())

    assert completion.choices[0].message.content == "A cat."


async def test_reply_without_usage_gets_zeros(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    reply = {**COMPLETION, "usage": None}
    respx_mock.post("/chat/completions").mock(return_value=httpx.Response(200, json=reply))

    completion = await answer(provider(transport), vision_call())

    assert completion.usage.total_tokens == 0


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"choices": "none"}', b"[]"])
async def test_malformed_reply_is_an_upstream_error(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter, body: bytes
) -> None:
    respx_mock.post("/chat/completions").mock(return_value=httpx.Response(200, content=body))

    with pytest.raises(UpstreamError, match="malformed"):
        await answer(provider(transport), vision_call())


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, UpstreamRejected),
        (401, UpstreamAuthFailed),
        (404, UpstreamRejected),
        (429, UpstreamRateLimited),
        (500, UpstreamError),
        (503, UpstreamError),
    ],
)
async def test_error_statuses_are_mapped(
    transport: httpx.AsyncBaseTransport,
    respx_mock: respx.MockRouter,
    status: int,
    error_class: type[GatewayError],
) -> None:
    error = {"error": {"message": "Invalid image sk-upstream", "type": "invalid_request_error"}}
    respx_mock.post("/chat/completions").mock(return_value=httpx.Response(status, json=error))

    with pytest.raises(GatewayError) as caught:
        await answer(provider(transport, api_key="sk-upstream"), vision_call())

    assert type(caught.value) is error_class
    assert "sk-upstream" not in caught.value.message


async def test_upstream_message_is_kept_on_rejection(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    error = {"error": {"message": "Image too small", "type": "invalid_request_error"}}
    respx_mock.post("/chat/completions").mock(return_value=httpx.Response(400, json=error))

    with pytest.raises(UpstreamRejected, match="Image too small"):
        await answer(provider(transport), vision_call())


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        (httpx.ConnectError("refused"), UpstreamUnavailable),
        (httpx.ReadTimeout("slow"), UpstreamTimeout),
        (httpx.ConnectTimeout("slow"), UpstreamTimeout),
    ],
)
async def test_transport_failures_are_mapped(
    transport: httpx.AsyncBaseTransport,
    respx_mock: respx.MockRouter,
    failure: Exception,
    error_class: type[GatewayError],
) -> None:
    respx_mock.post("/chat/completions").mock(side_effect=failure)

    with pytest.raises(error_class):
        await answer(provider(transport), vision_call())
    with pytest.raises(error_class):
        await anext(chunks_of(provider(transport), vision_call(stream=True)))


async def test_streams_ask_the_upstream_for_usage(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post("/chat/completions").mock(
        return_value=sse(delta_event({"content": "x"}, "stop"), "[DONE]")
    )
    call = vision_call(stream=True, stream_options={"include_usage": False, "future": 1})

    await collect(chunks_of(provider(transport), call))

    body = sent(route)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True, "future": 1}
    assert body["model"] == "Qwen/Qwen2-VL-7B"


async def test_stream_relays_chunks_in_order_after_our_role_chunk(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("/chat/completions").mock(
        return_value=sse(
            b": keepalive\n\n",
            delta_event({"role": "assistant", "content": ""}),
            delta_event({"content": "A "}),
            delta_event({"content": "cat."}),
            delta_event({}, "stop"),
            USAGE_EVENT,
            "[DONE]",
        )
    )

    chunks = await collect(chunks_of(provider(transport), vision_call(stream=True)))

    role, *rest = chunks
    assert role.choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.content for c in rest[:2]] == ["A ", "cat."]
    assert all(c.choices[0].delta.role is None for c in rest if c.choices)
    assert rest[2].choices[0].finish_reason == "stop"
    assert rest[3].choices == []
    assert rest[3].usage is not None
    assert rest[3].usage.total_tokens == 14
    assert len(rest) == 4
    assert {c.model for c in chunks} == {"vision"}
    assert len({c.id for c in chunks}) == 1


async def test_text_events_of_an_upstream_that_outpaces_the_gateway_go_out_together(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    tool = {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}]}
    flood = [delta_event({"content": "a"}) for _ in range(100)]
    respx_mock.post("/chat/completions").mock(
        return_value=sse(
            delta_event({"role": "assistant", "content": ""}),
            *flood,
            delta_event(tool),
            delta_event({"content": "!"}),
            delta_event({"content": "?"}, "stop"),
            USAGE_EVENT,
            "[DONE]",
        )
    )

    chunks = await collect(chunks_of(provider(transport), vision_call(stream=True)))

    _, *rest = chunks
    contents = [c.choices[0].delta.content if c.choices else None for c in rest]
    # A batch of 64 events merged, the next (37 events and the rest) as they came.
    assert contents == ["a" * 63, *["a"] * 37, None, "!", "?", None]
    assert rest[38].choices[0].delta.model_extra == tool
    assert rest[40].choices[0].finish_reason == "stop"


async def test_a_chunk_for_a_choice_not_asked_for_fails_the_stream(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("/chat/completions").mock(
        return_value=sse(
            *[delta_event({"content": "a"}) for _ in range(70)],
            delta_event({"content": "B "}, index=5),
        )
    )
    received: list[ChatCompletionChunk] = []

    with pytest.raises(UpstreamError, match="more choices"):
        await collect_into(chunks_of(provider(transport), vision_call(stream=True)), received)

    # What came before the failure went out, merged or not.
    assert "".join(c.choices[0].delta.content or "" for c in received) == "a" * 70


async def test_role_and_content_in_one_upstream_chunk_keep_the_content(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("/chat/completions").mock(
        return_value=sse(delta_event({"role": "assistant", "content": "Hi"}, "stop"), "[DONE]")
    )

    chunks = await collect(chunks_of(provider(transport), vision_call(stream=True)))

    assert [c.choices[0].delta.content for c in chunks] == ["", "Hi"]
    assert chunks[1].choices[0].delta.role is None


async def test_tool_call_deltas_are_relayed(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    tool_call = [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}]
    respx_mock.post("/chat/completions").mock(
        return_value=sse(
            delta_event({"role": "assistant", "content": None, "tool_calls": tool_call}),
            delta_event({}, "tool_calls"),
            "[DONE]",
        )
    )

    chunks = await collect(chunks_of(provider(transport), vision_call(stream=True)))

    assert chunks[1].choices[0].delta.model_dump()["tool_calls"] == tool_call


async def test_native_n_announces_every_choice(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("/chat/completions").mock(
        return_value=sse(
            delta_event({"content": "a"}, index=0),
            delta_event({"content": "b"}, index=1),
            delta_event({}, "stop", index=0),
            delta_event({}, "stop", index=1),
            "[DONE]",
        )
    )

    chunks = await collect(chunks_of(provider(transport), vision_call(stream=True, n=2)))

    assert [c.index for c in chunks[0].choices] == [0, 1]
    assert [c.choices[0].index for c in chunks[1:3]] == [0, 1]


async def test_error_status_on_a_stream_is_raised_before_any_chunk(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("/chat/completions").mock(
        return_value=httpx.Response(
            429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "2"}
        )
    )

    with pytest.raises(UpstreamRateLimited) as caught:
        await anext(chunks_of(provider(transport), vision_call(stream=True)))

    assert caught.value.headers == {"Retry-After": "2"}


async def test_error_event_mid_stream_is_an_upstream_error(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("/chat/completions").mock(
        return_value=sse(
            delta_event({"content": "A "}),
            {"error": {"message": "model crashed", "type": "server_error"}},
            delta_event({}, "stop"),
        )
    )
    received: list[ChatCompletionChunk] = []

    with pytest.raises(UpstreamError, match="model crashed"):
        await collect_into(chunks_of(provider(transport), vision_call(stream=True)), received)

    assert [c.choices[0].delta.content for c in received] == ["", "A "]


async def test_string_error_event_mid_stream_is_an_upstream_error(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("/chat/completions").mock(
        return_value=sse(delta_event({"content": "A "}), {"error": "out of memory"})
    )

    with pytest.raises(UpstreamError, match="out of memory"):
        await collect(chunks_of(provider(transport), vision_call(stream=True)))


@pytest.mark.parametrize("choices", [1, 2])
async def test_done_without_a_finish_reason_ends_each_choice_before_the_usage(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter, choices: int
) -> None:
    respx_mock.post("/chat/completions").mock(
        return_value=sse(delta_event({"content": "A "}), USAGE_EVENT, "[DONE]")
    )

    chunks = await collect(chunks_of(provider(transport), vision_call(stream=True, n=choices)))

    *_, content, finish, usage = chunks
    assert content.choices[0].delta.content == "A "
    assert [(c.index, c.finish_reason) for c in finish.choices] == [
        (index, "stop") for index in range(choices)
    ]
    assert usage.choices == []
    assert usage.usage is not None


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([delta_event({"content": "A "})], id="cut off"),
        pytest.param([delta_event({"content": "A "}), USAGE_EVENT], id="cut off after usage"),
        pytest.param([], id="nothing at all"),
    ],
)
async def test_stream_ending_without_finish_reason_or_done_is_an_upstream_error(
    transport: httpx.AsyncBaseTransport,
    respx_mock: respx.MockRouter,
    events: list[dict[str, Any] | str | bytes],
) -> None:
    respx_mock.post("/chat/completions").mock(return_value=sse(*events))

    with pytest.raises(UpstreamError, match="ended before it was complete"):
        await collect(chunks_of(provider(transport), vision_call(stream=True)))


async def test_malformed_event_is_an_upstream_error(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("/chat/completions").mock(return_value=sse("{not json"))

    with pytest.raises(UpstreamError, match="malformed stream event"):
        await collect(chunks_of(provider(transport), vision_call(stream=True)))


async def test_connection_lost_mid_stream_is_an_upstream_error(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield event_line(orjson.dumps(delta_event({"content": "A "})))
        raise httpx.RemoteProtocolError("peer closed connection")

    respx_mock.post("/chat/completions").mock(
        return_value=httpx.Response(
            200, content=body(), headers={"content-type": "text/event-stream"}
        )
    )

    with pytest.raises(UpstreamError, match="connection failed"):
        await collect(chunks_of(provider(transport), vision_call(stream=True)))


async def test_read_timeout_mid_stream_is_an_upstream_timeout(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield event_line(orjson.dumps(delta_event({"content": "A "})))
        raise httpx.ReadTimeout("no bytes for too long")

    respx_mock.post("/chat/completions").mock(
        return_value=httpx.Response(
            200, content=body(), headers={"content-type": "text/event-stream"}
        )
    )

    with pytest.raises(UpstreamTimeout):
        await collect(chunks_of(provider(transport), vision_call(stream=True)))


async def test_the_upstream_response_is_closed_when_the_stream_is_closed(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post("/chat/completions").mock(
        return_value=sse(delta_event({"content": "A "}), delta_event({}, "stop"), "[DONE]")
    )
    chunks = chunks_of(provider(transport), vision_call(stream=True))
    assert isinstance(chunks, AsyncGenerator)

    await anext(chunks)
    await chunks.aclose()

    assert route.calls.last.response.is_closed
