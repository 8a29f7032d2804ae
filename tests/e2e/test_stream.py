"""Streamed completions: chunks relayed in order, usage on request, SSE framing, failures, and
client disconnects reaching the upstream."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import AccessLog, MakeClient, StartGateway
from tests.e2e.deployments import OPENAI_KEY, chat_request, entry, user_message
from tests.e2e.fakes.openai_compat import FakeUpstream, ReceivedRequest, Reply
from tests.e2e.test_accounting import wait_for

pytestmark = pytest.mark.e2e

DELTAS = ["The ", "image ", "shows ", "a ", "tabby ", "cat", "."]


def sse_events(body: str) -> list[str]:
    """The events of an SSE body, checking that each one is a lone `data:` line."""
    assert body.endswith("\n\n"), body[-80:]
    events = body.split("\n\n")[:-1]
    for event in events:
        assert event.startswith("data: "), event
        assert "\n" not in event, event
    return [event.removeprefix("data: ") for event in events]


def test_stream_relays_upstream_chunks_in_order(
    client: openai.OpenAI, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script(
        "upstream-vision", Reply(deltas=DELTAS, keepalive=True, after_done="NOT PART OF THE ANSWER")
    )

    with client.chat.completions.create(
        model="gpt-vision",
        messages=user_message(),
        stream=True,
    ) as stream:
        chunks = list(stream)

    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks[1:] if c.choices[0].delta.content]
    assert pieces == DELTAS
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)
    assert {chunk.model for chunk in chunks} == {"gpt-vision"}
    assert len({chunk.id for chunk in chunks}) == 1
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    [sent] = openai_upstream.received
    assert sent.model == "upstream-vision"
    assert sent.body["stream"] is True


@pytest.mark.anyio
async def test_stream_with_include_usage_ends_with_a_usage_chunk(
    async_client: openai.AsyncOpenAI, aimlapi_upstream: FakeUpstream
) -> None:
    aimlapi_upstream.script("upstream-aiml-vision", Reply(deltas=DELTAS, usage=(40, 7)))

    stream = await async_client.chat.completions.create(
        model="aiml-vision",
        messages=user_message(),
        stream=True,
        stream_options={"include_usage": True},
    )
    async with stream:
        chunks = [chunk async for chunk in stream]

    *answer, last = chunks
    assert answer[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in answer) == "".join(DELTAS)
    assert answer[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in answer)
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (
        40,
        7,
        47,
    )
    assert last.model == "aiml-vision"


@pytest.mark.anyio
async def test_async_stream_without_usage_has_none(
    async_client: openai.AsyncOpenAI, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("chatty", Reply(deltas=DELTAS, keepalive=True))

    stream = await async_client.chat.completions.create(
        model="fake/chatty",
        messages=user_message(),
        stream=True,
    )
    async with stream:
        chunks = [chunk async for chunk in stream]

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(DELTAS)
    assert all(chunk.choices and chunk.usage is None for chunk in chunks)


def test_stream_framing_is_data_events_ending_with_done(
    http: httpx.Client, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("framed", Reply(deltas=DELTAS, keepalive=True))

    response = http.post(
        "/v1/chat/completions",
        json=chat_request("fake/framed", stream=True, stream_options={"include_usage": True}),
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"]
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    assert events.count("[DONE]") == 1
    chunks: list[dict[str, Any]] = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 19


def test_quiet_upstream_gets_keepalive_comments(
    http: httpx.Client, openai_upstream: FakeUpstream
) -> None:
    # A comment at least every 5 s while the stream is quiet, so this test waits 5.6 s.
    openai_upstream.script("pondering", Reply(deltas=["after a pause"], chunk_delay_s=5.6))

    response = http.post("/v1/chat/completions", json=chat_request("fake/pondering", stream=True))

    lines = [line for line in response.text.splitlines() if line]
    keepalive = lines.index(": keepalive")
    answer = next(i for i, line in enumerate(lines) if "after a pause" in line)
    assert 0 < keepalive < answer
    assert lines[-1] == "data: [DONE]"


def test_error_event_mid_stream_ends_the_stream_without_done(
    http: httpx.Client, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("crashes", Reply(deltas=DELTAS, error_after=3))

    response = http.post("/v1/chat/completions", json=chat_request("fake/crashes", stream=True))

    assert response.status_code == 200
    events = sse_events(response.text)
    assert "[DONE]" not in events
    *answer, last = (json.loads(event) for event in events)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in answer) == "".join(
        DELTAS[:3]
    )
    assert set(last) == {"error"}
    assert OPENAI_KEY not in response.text
    assert last["error"]["type"] == "upstream_error"
    assert last["error"]["code"] == "upstream_failed"


def test_stream_that_breaks_off_is_an_error_event(
    http: httpx.Client, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("breaks", Reply(deltas=DELTAS, break_after=2))

    response = http.post("/v1/chat/completions", json=chat_request("fake/breaks", stream=True))

    events = sse_events(response.text)
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert set(last["error"]) == {"message", "type", "param", "code"}
    assert last["error"]["type"] == "upstream_error"
    assert last["error"]["code"] == "upstream_failed"


@pytest.mark.parametrize("include_usage", [False, True])
def test_a_stream_ending_with_done_but_no_finish_reason_is_complete(
    start_gateway: StartGateway,
    make_client: MakeClient,
    access_log: AccessLog,
    openai_upstream: FakeUpstream,
    include_usage: bool,
) -> None:
    url = start_gateway([entry("lenient", openai_upstream)])
    openai_upstream.script("lenient", Reply(deltas=DELTAS, sends_finish=False))
    options: Any = {"include_usage": True} if include_usage else openai.omit

    with make_client(url).chat.completions.create(
        model="lenient", messages=user_message(), stream=True, stream_options=options
    ) as stream:
        chunks = list(stream)

    *answer, last = chunks
    if include_usage:
        assert last.choices == []
        assert last.usage is not None
        assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (12, 7)
        *answer, last = answer
    assert "".join(c.choices[0].delta.content or "" for c in answer) == "".join(DELTAS)
    assert [c.finish_reason for c in last.choices] == ["stop"]
    assert all(c.finish_reason is None for chunk in answer for c in chunk.choices)
    wait_for(lambda: any(line.get("model") == "lenient" for line in access_log(url)))
    [line] = [line for line in access_log(url) if line.get("model") == "lenient"]
    assert (line["status"], line["outcome"]) == (200, "completed")


def test_sdk_raises_on_a_mid_stream_error(
    client: openai.OpenAI, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("crashes", Reply(deltas=DELTAS, error_after=2))
    received: list[str] = []

    stream = client.chat.completions.create(
        model="fake/crashes", messages=user_message(), stream=True
    )
    with stream, pytest.raises(openai.APIError) as raised:
        received.extend(chunk.choices[0].delta.content or "" for chunk in stream)

    assert "".join(received) == "".join(DELTAS[:2])
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["code"] == "upstream_failed"


def _endless(fake: FakeUpstream, model: str) -> None:
    fake.script(model, Reply(deltas=["tick "] * 200, chunk_delay_s=0.02))


def _assert_closed_within_a_second(sent: ReceivedRequest, closed_at: float) -> None:
    assert sent.stream_cancelled.wait(1.0), "the upstream stream was not closed"
    assert sent.cancelled_at is not None
    assert sent.cancelled_at - closed_at < 1.0


def test_client_disconnect_closes_the_upstream_stream(
    client: openai.OpenAI, openai_upstream: FakeUpstream
) -> None:
    _endless(openai_upstream, "endless")

    stream = client.chat.completions.create(
        model="fake/endless",
        messages=user_message(),
        stream=True,
    )
    for _, _chunk in zip(range(3), stream, strict=False):
        pass
    closed_at = time.monotonic()
    stream.close()

    [sent] = openai_upstream.received
    _assert_closed_within_a_second(sent, closed_at)


@pytest.mark.anyio
async def test_async_client_disconnect_closes_the_upstream_stream(
    async_client: openai.AsyncOpenAI, aimlapi_upstream: FakeUpstream
) -> None:
    _endless(aimlapi_upstream, "endless")

    stream = await async_client.chat.completions.create(
        model="aiml/endless",
        messages=user_message(),
        stream=True,
    )
    seen = 0
    async for _chunk in stream:
        seen += 1
        if seen == 3:
            break
    closed_at = time.monotonic()
    await stream.close()

    [sent] = aimlapi_upstream.received
    _assert_closed_within_a_second(sent, closed_at)


def test_usage_chunk_is_sent_when_asked_even_if_the_upstream_has_none(
    client: openai.OpenAI, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("uncounted", Reply(deltas=DELTAS, usage=None))

    with client.chat.completions.create(
        model="fake/uncounted",
        messages=user_message(),
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)

    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert sum(1 for chunk in chunks if chunk.usage is not None) == 1


def test_upstream_lines_ending_in_crlf(
    client: openai.OpenAI, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("windows", Reply(deltas=DELTAS, crlf=True, keepalive=True))

    with client.chat.completions.create(
        model="fake/windows", messages=user_message(), stream=True
    ) as stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)

    assert text == "".join(DELTAS)
