"""SSE both ways: decoding upstream event streams, and framing the gateway's own stream."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import orjson
import pytest

from app.api.client import ClientWatch
from app.api.stream import EventStream, PendingStream, chat_body, start_stream
from app.errors import UpstreamError, UpstreamTimeout
from app.observe.record import RequestRecord
from app.wire.schemas import ChatCompletionChunk, ChoiceDelta, ChunkChoice
from app.wire.sse import (
    DONE,
    KEEPALIVE,
    encode_data,
    encode_error,
    encode_event,
    iter_sse_data,
)

pytestmark = pytest.mark.anyio


def event_stream(*chunks: bytes) -> httpx.Response:
    """An upstream response whose body arrives in exactly these network chunks."""

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


async def data_of(response: httpx.Response) -> list[str]:
    return [data async for data in iter_sse_data(response)]


async def test_each_event_yields_its_data_until_done() -> None:
    response = event_stream(b'data: {"a": 1}\n\ndata: {"b": 2}\n\ndata: [DONE]\n\n')

    assert await data_of(response) == ['{"a": 1}', '{"b": 2}']


async def test_comments_keepalives_and_empty_events_are_skipped() -> None:
    response = event_stream(
        b": keepalive\n\n",
        b"data: one\n: a comment inside an event\n\n",
        b"event: ping\ndata:\n\n",
        b"id: 7\nretry: 1000\n\n",
        b"data: two\n\ndata: [DONE]\n\n",
    )

    assert await data_of(response) == ["one", "two"]


async def test_multi_line_data_is_joined_with_newlines() -> None:
    response = event_stream(b"data: first\ndata: second\ndata:third\n\n")

    assert await data_of(response) == ["first\nsecond\nthird"]


async def test_only_one_leading_space_is_removed() -> None:
    response = event_stream(b"data:  indented\n\n")

    assert await data_of(response) == [" indented"]


async def test_named_events_still_yield_their_data() -> None:
    response = event_stream(b"event: message\ndata: x\n\n")

    assert await data_of(response) == ["x"]


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
async def test_crlf_and_cr_line_endings(newline: bytes) -> None:
    body = b"data: one" + newline + newline + b": c" + newline + newline + b"data: two" + newline
    response = event_stream(body + newline)

    assert await data_of(response) == ["one", "two"]


async def test_events_split_across_network_chunks() -> None:
    whole = b'data: {"text": "h\xc3\xa9llo"}\r\n\r\ndata: second\r\n\r\ndata: [DONE]\r\n\r\n'
    response = event_stream(*(whole[i : i + 3] for i in range(0, len(whole), 3)))

    assert await data_of(response) == ['{"text": "héllo"}', "second"]


async def test_crlf_split_between_chunks_is_one_line_ending() -> None:
    response = event_stream(b"data: one\r", b"\n\r", b"\ndata: two\r\n\r\n")

    assert await data_of(response) == ["one", "two"]


async def test_nothing_after_done_is_read() -> None:
    response = event_stream(b"data: one\n\ndata: [DONE]\n\n", b"data: after\n\n")

    assert await data_of(response) == ["one"]


async def test_end_of_stream_without_done_simply_ends() -> None:
    response = event_stream(b"data: one\n\n", b"data: two\n\n")

    assert await data_of(response) == ["one", "two"]


async def test_an_unterminated_last_event_is_dropped() -> None:
    response = event_stream(b"data: one\n\ndata: cut off")

    assert await data_of(response) == ["one"]


async def test_a_compressed_stream_is_decompressed_first() -> None:
    # The gateway asks for identity, but an upstream may compress anyway.
    body = gzip.compress(b"data: one\n\ndata: two\n\ndata: [DONE]\n\n")

    async def arriving() -> AsyncIterator[bytes]:
        yield body[:10]
        yield body[10:]

    response = httpx.Response(
        200,
        headers={"content-type": "text/event-stream", "content-encoding": "gzip"},
        content=arriving(),
    )

    assert await data_of(response) == ["one", "two"]


def chunk(content: str) -> ChatCompletionChunk:
    return ChatCompletionChunk(
        id="chatcmpl-1",
        created=1,
        model="m",
        choices=[ChunkChoice(delta=ChoiceDelta(content=content))],
    )


def test_encode_event_is_one_data_line_and_a_blank_line() -> None:
    encoded = encode_event(chunk("a\nb"))

    assert encoded.startswith(b"data: {")
    assert encoded.endswith(b"}\n\n")
    assert encoded.count(b"\n") == 2
    assert ChatCompletionChunk.model_validate_json(encoded[6:]) == chunk("a\nb")


def test_encode_data_and_done() -> None:
    assert encode_data(b'{"x":1}') == b'data: {"x":1}\n\n'
    assert DONE == b"data: [DONE]\n\n"


def test_encode_error_carries_the_envelope() -> None:
    encoded = encode_error(UpstreamTimeout("too slow"))

    assert orjson.loads(encoded.removeprefix(b"data: ")) == {
        "error": {
            "message": "too slow",
            "type": "upstream_error",
            "param": None,
            "code": "upstream_timeout",
        }
    }


class Events:
    """A source of chunks that may fail after them, and notes whether it was closed."""

    def __init__(self, events: list[ChatCompletionChunk], failure: Exception | None = None) -> None:
        self.events = events
        self.failure = failure
        self.closed = False

    async def __call__(self) -> AsyncIterator[ChatCompletionChunk]:
        try:
            for event in self.events:
                yield event
            if self.failure is not None:
                raise self.failure
        finally:
            self.closed = True


async def body_of(source: Events, record: RequestRecord | None = None) -> list[bytes]:
    """What the streamed response sends for `source`, to a client that stays."""
    sent: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and message["body"]:
            sent.append(message["body"])

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    record = record or RequestRecord()
    stream = EventStream(chat_body(source(), record), ClientWatch(receive, keepalive_s=5.0), record)
    await stream({"type": "http"}, receive, send)
    return sent


def payload(event: bytes) -> object:
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    return orjson.loads(event[6:])


async def test_sse_body_sends_the_events_then_done() -> None:
    source = Events([chunk("a"), chunk("b")])

    body = await body_of(source)

    assert body == [encode_event(chunk("a")), encode_event(chunk("b")), DONE]
    assert source.closed


async def test_empty_stream_is_just_done() -> None:
    assert await body_of(Events([])) == [DONE]


async def test_gateway_error_mid_stream_is_one_error_event_and_no_done() -> None:
    source = Events([chunk("a")], UpstreamError("the upstream broke off"))
    record = RequestRecord()

    body = await body_of(source, record)

    assert body[0] == encode_event(chunk("a"))
    assert len(body) == 2
    assert payload(body[1]) == {
        "error": {
            "message": "the upstream broke off",
            "type": "upstream_error",
            "param": None,
            "code": "upstream_failed",
        }
    }
    assert DONE not in body
    assert source.closed
    assert (record.status, record.error_code, record.outcome) == (
        502,
        "upstream_failed",
        "upstream_failed",
    )


async def test_unexpected_error_mid_stream_is_a_generic_server_error() -> None:
    source = Events([chunk("a")], KeyError("secret-internal-detail"))

    body = await body_of(source)

    assert len(body) == 2
    assert b"secret-internal-detail" not in body[1]
    assert b"KeyError" not in body[1]
    error = payload(body[1])
    assert isinstance(error, dict)
    assert error["error"]["type"] == "server_error"
    assert error["error"]["code"] is None
    assert DONE not in body


class Opening:
    """A stream that opens after `delay_s` (or fails then), and notes what became of it."""

    def __init__(self, delay_s: float, error: Exception | None = None) -> None:
        self.delay_s = delay_s
        self.error = error
        self.cancelled = False
        self.source = Events([chunk("a"), chunk("b")])

    async def open(self) -> AsyncIterator[ChatCompletionChunk]:
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.error is not None:
            raise self.error
        return self.source()


async def test_a_stream_that_opens_within_the_quiet_time_is_given_as_it_is() -> None:
    opening = Opening(0.01)

    chunks = await start_stream(opening.open(), quiet_s=1.0)

    assert not isinstance(chunks, PendingStream)
    assert [c.choices[0].delta.content async for c in chunks] == ["a", "b"]


async def test_a_failure_within_the_quiet_time_is_raised() -> None:
    with pytest.raises(UpstreamError):
        await start_stream(Opening(0.01, UpstreamError("down")).open(), quiet_s=1.0)


async def test_a_stream_slower_than_the_quiet_time_is_pending_then_read_whole() -> None:
    opening = Opening(0.1)

    chunks = await start_stream(opening.open(), quiet_s=0.01)

    assert isinstance(chunks, PendingStream)
    assert [c.choices[0].delta.content async for c in chunks] == ["a", "b"]
    await chunks.aclose()
    assert opening.source.closed


async def test_a_pending_stream_raises_the_failure_where_it_is_read() -> None:
    chunks = await start_stream(Opening(0.05, UpstreamError("down")).open(), quiet_s=0.01)

    assert isinstance(chunks, PendingStream)
    with pytest.raises(UpstreamError):
        await anext(chunks)
    await chunks.aclose()


async def test_closing_a_pending_stream_cancels_its_opening() -> None:
    opening = Opening(10.0)
    chunks = await start_stream(opening.open(), quiet_s=0.01)

    assert isinstance(chunks, PendingStream)
    await chunks.aclose()
    await asyncio.sleep(0)

    assert opening.cancelled


async def test_a_cancelled_wait_cancels_the_opening() -> None:
    opening = Opening(10.0)
    waiting = asyncio.ensure_future(start_stream(opening.open(), quiet_s=5.0))
    await asyncio.sleep(0.01)

    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0)

    assert opening.cancelled


async def test_a_pending_stream_sends_a_keepalive_with_its_head() -> None:
    chunks = await start_stream(Opening(0.05).open(), quiet_s=0.01)
    record = RequestRecord()
    sent: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and message["body"]:
            sent.append(message["body"])

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    watch = ClientWatch(receive, keepalive_s=5.0)
    await EventStream(chat_body(chunks, record), watch, record, pending=True)(
        {"type": "http"}, receive, send
    )

    assert sent == [KEEPALIVE, encode_event(chunk("a")), encode_event(chunk("b")), DONE]
