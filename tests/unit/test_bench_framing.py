"""The bench's load generator reads Responses streams as a client does: the gateway's own
events, served over loopback in chunked encoding, counted, timed and judged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest

from app.errors import GatewayError, UpstreamError
from app.responses.events import ResponseStream, encode
from app.responses.payload import response_data
from app.responses.schemas import parse_request
from app.wire.schemas import ChatCompletion, ChatCompletionChunk
from bench.answers import problem_with
from bench.client import Exchange
from bench.framing import Framing
from bench.load import fetch_once
from bench.scenarios import RESPONSES_SMALL, RESPONSES_STREAM

pytestmark = pytest.mark.anyio

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
REQUEST = b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"


def chunk(delta: dict[str, Any], finish: str | None = None, **usage: int) -> ChatCompletionChunk:
    choices = [{"index": 0, "delta": delta, "finish_reason": finish}] if delta or finish else []
    body = {"id": "c", "created": 1, "model": "m", "choices": choices, "usage": usage or None}
    return ChatCompletionChunk.model_validate(body)


ROLE = chunk({"role": "assistant", "content": ""})
USAGE = chunk({}, prompt_tokens=5, completion_tokens=3, total_tokens=8)


def text(piece: str) -> ChatCompletionChunk:
    return chunk({"content": piece})


async def chunks_of(*items: ChatCompletionChunk | GatewayError) -> AsyncIterator[Any]:
    for item in items:
        if isinstance(item, GatewayError):
            raise item
        yield item


async def gateway_events(*items: ChatCompletionChunk | GatewayError) -> list[bytes]:
    """The events the gateway sends for this chat answer, each as it is encoded."""
    request = parse_request({"model": "m", "input": "x", "stream": True})
    batches = ResponseStream(request, chunks_of(*items)).batches()
    return [encode(event) async for batch in batches for event in batch]


async def read(pieces: Sequence[bytes], framing: Framing) -> Exchange:
    """Serve `pieces` as HTTP chunks of one streamed reply and read it with the bench client."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD)
        for piece in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await fetch_once("127.0.0.1", port, REQUEST, streaming=True, framing=framing)
    finally:
        server.close()


def shredded(events: list[bytes], size: int = 7) -> list[bytes]:
    """The events as one body cut every `size` bytes, so that events straddle HTTP chunks."""
    body = b"".join(events)
    return [body[start : start + size] for start in range(0, len(body), size)]


async def test_every_event_counts_and_the_text_deltas_are_the_tokens() -> None:
    events = await gateway_events(ROLE, text("A "), text("tabby "), text("cat."), chunk({}, "stop"))
    pieces = [*events[:3], b": keepalive\n\n", *events[3:]]

    exchange = await read(shredded(pieces), "responses")

    assert exchange.error is None
    assert (exchange.events, exchange.tokens, exchange.done) == (len(events), 3, True)
    assert exchange.first_token is not None
    assert exchange.finished is not None
    assert exchange.first_token <= exchange.finished


async def test_crlf_line_ends_are_read_too() -> None:
    events = await gateway_events(ROLE, text("A "), text("cat."), chunk({}, "stop"))
    crlf = [event.replace(b"\n", b"\r\n") for event in events]

    exchange = await read(crlf, "responses")

    assert (exchange.events, exchange.tokens, exchange.error) == (len(events), 2, None)


async def test_an_incomplete_response_ends_the_stream_as_well() -> None:
    events = await gateway_events(ROLE, text("A "), chunk({}, "length"))
    assert events[-1].startswith(b"event: response.incomplete\n")

    exchange = await read(events, "responses")

    assert (exchange.done, exchange.tokens, exchange.error) == (True, 1, None)


async def test_a_stream_cut_before_response_completed_is_an_error() -> None:
    events = await gateway_events(ROLE, text("A "), text("cat."), chunk({}, "stop"), USAGE)
    assert events[-1].startswith(b"event: response.completed\n")

    exchange = await read(events[:-1], "responses")

    assert exchange.done is False
    assert exchange.error == "the stream ended without response.completed or response.incomplete"


async def test_an_error_event_is_the_exchange_error() -> None:
    broken = UpstreamError("the upstream stream broke off")
    events = await gateway_events(ROLE, text("A "), broken)
    assert events[-1].startswith(b"event: response.failed\n")

    exchange = await read(events, "responses")

    assert exchange.error is not None
    assert exchange.error.startswith("event: error\n")
    assert "the upstream stream broke off" in exchange.error
    assert exchange.tokens == 1


async def test_chat_framing_still_wants_done_and_raw_framing_does_not() -> None:
    chat = [b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n']

    without_done = await read(chat, "chat")
    with_done = await read([*chat, b"data: [DONE]\n\n"], "chat")
    raw = await read([b"data: hi\n\n", b"data: there\n\n"], "raw")

    assert without_done.error == "the stream ended without [DONE]"
    assert (with_done.error, with_done.tokens, with_done.events) == (None, 1, 1)
    assert (raw.error, raw.tokens, raw.events) == (None, 2, 2)


def reply(body: bytes) -> Exchange:
    exchange = Exchange(started=0.0, status=200)
    exchange.body += body
    return exchange


def completion(content: str) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "c",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }
    )


def test_the_check_takes_a_response_with_output_text_and_nothing_else() -> None:
    request = parse_request({"model": "m", "input": "x"})
    response = orjson.dumps(response_data(completion("A cat."), request))
    empty = orjson.dumps(response_data(completion(""), request))
    chat = orjson.dumps({"object": "chat.completion", "choices": [{"message": {"content": "A"}}]})

    assert problem_with(RESPONSES_SMALL, reply(response), "responses") is None
    assert problem_with(RESPONSES_SMALL, reply(empty), "responses") == "no output text"
    assert problem_with(RESPONSES_SMALL, reply(chat), "responses") == "not a response"
    assert problem_with(RESPONSES_SMALL, reply(response), "chat") == "not a chat.completion"


def test_responses_scenarios_ask_the_gateway_for_responses_and_the_mock_for_chat() -> None:
    through = RESPONSES_STREAM.requests("127.0.0.1", 8080, through_gateway=True)
    direct = RESPONSES_STREAM.requests("127.0.0.1", 8001, through_gateway=False)
    body = orjson.loads(through.first.partition(b"\r\n\r\n")[2])

    assert through.first.startswith(b"POST /v1/responses HTTP/1.1\r\n")
    assert through.framing == "responses"
    assert body["stream"] is True
    assert [part["type"] for part in body["input"][0]["content"]] == ["input_text", "input_image"]
    assert direct.first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert direct.framing == "chat"
