"""Server-sent events, both ways: the text of our OpenAI-style streams, and upstream streams in."""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections.abc import AsyncIterator

import httpx
import orjson

# The decoders behind httpx-sse's `EventSource`, fed directly: `EventSource` reads a body
# through httpx's text decoding, which costs more per event than the parsing. They are in a
# private module of httpx-sse 0.4, the release pyproject.toml allows
# (tests/unit/test_library_seams.py checks them).
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from pydantic import BaseModel

from app.config import DEFAULT_MAX_EVENT_BYTES
from app.errors import GatewayError, UpstreamError

logger = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
DONE_DATA = "[DONE]"  # the data of the event that ends an OpenAI-style stream
KEEPALIVE = b": keepalive\n\n"
_utf8 = codecs.getincrementaldecoder("utf-8")
# The response extension that caps one upstream event (set where the stream is opened).
MAX_EVENT_BYTES = "max_event_bytes"
# Upstream events relayed before the event loop is let to serve others (see below).
EVENTS_BEFORE_YIELD = 64


def encode_data(payload: bytes) -> bytes:
    """One `data:` event carrying a JSON payload (which never contains a newline)."""
    return b"data: " + payload + b"\n\n"


def encode_event(model: BaseModel) -> bytes:
    return encode_data(model.model_dump_json().encode())


def encode_error(error: GatewayError) -> bytes:
    return encode_data(orjson.dumps(error.to_envelope()))


async def iter_sse_data(response: httpx.Response, *, with_done: bool = False) -> AsyncIterator[str]:
    """The `data` of each upstream event, one at a time (see `iter_sse_batches`)."""
    async for batch in iter_sse_batches(response, with_done=with_done):
        for data in batch:
            yield data


async def iter_sse_batches(
    response: httpx.Response, *, with_done: bool = False
) -> AsyncIterator[list[str]]:
    """The `data` of the upstream's events, comments and keepalives skipped, until `[DONE]`
    (itself given too, as `DONE_DATA`, `with_done`); parsed by httpx-sse's line and event
    decoders, in batches: the events that came off the connection together, at most
    `EVENTS_BEFORE_YIELD` to a batch (a caller may merge them; none waits for the next).

    The body is still read to its end after `[DONE]`, so that the connection goes back to the
    pool instead of being closed. An upstream that closes without `[DONE]` simply ends the
    iteration: callers tell a finished stream from a broken one by what they saw.

    The decoders are fed the body as it comes off the connection: an uncompressed stream (we
    ask for one) needs none of httpx's decoding layers, which cost more per event than the
    parsing itself. A compressed one goes through them.

    One event, its unfinished line included, may hold at most the response's
    `MAX_EVENT_BYTES` extension: an upstream sending a line or an event that never ends
    fails the stream there, instead of filling the gateway's memory.

    An upstream faster than the gateway finds its events waiting in the connection's buffer,
    which reading takes without ever waiting: after every `EVENTS_BEFORE_YIELD` events the
    event loop is let to serve others, or one such stream would hold it for seconds.
    """
    limit = int(response.extensions.get(MAX_EVENT_BYTES, DEFAULT_MAX_EVENT_BYTES))
    identity = response.headers.get("content-encoding", "identity").lower() in ("", "identity")
    if identity:
        assert isinstance(response.stream, httpx.AsyncByteStream)
        body: AsyncIterator[bytes] = aiter(response.stream)
    else:
        body = response.aiter_bytes()
    text, lines, events = _utf8(errors="replace"), SSELineDecoder(), SSEDecoder()
    held = 0  # characters of the event being read, in its finished lines
    partial = 0  # and in the line not finished yet
    done = False
    since_yield = 0
    async for chunk in body:
        decoded = text.decode(chunk)
        batch = []
        for line in lines.decode(decoded):
            held = held + len(line) if line else 0
            event = events.decode(line.rstrip("\n"))
            if event is not None and event.data and not done:
                if event.data == DONE_DATA:
                    done = True
                    if with_done:
                        batch.append(DONE_DATA)
                else:
                    batch.append(event.data)
                    if len(batch) == EVENTS_BEFORE_YIELD:
                        yield batch
                        batch = []
                        since_yield = 0
                        await asyncio.sleep(0)
        cut = max(decoded.rfind("\n"), decoded.rfind("\r"))
        partial = partial + len(decoded) if cut < 0 else len(decoded) - cut - 1
        if held + partial > limit:
            logger.warning("upstream stream event over %d bytes: cut", limit)
            raise UpstreamError(f"the upstream sent a stream event over {limit} bytes")
        if batch:
            yield batch
            since_yield += len(batch)
            if since_yield >= EVENTS_BEFORE_YIELD:
                since_yield = 0
                await asyncio.sleep(0)
    last = []
    for line in lines.decode(text.decode(b"", final=True)) + lines.flush():
        event = events.decode(line.rstrip("\n"))
        if event is not None and event.data and not done:
            if event.data != DONE_DATA:
                last.append(event.data)
            elif with_done:
                last.append(DONE_DATA)
    if last:
        yield last


def encode_named_event(name: str, payload: bytes) -> bytes:
    """One event whose `event:` line names it, carrying a JSON payload: the Responses API's
    framing (its streams end without `[DONE]`)."""
    return b"event: " + name.encode() + b"\ndata: " + payload + b"\n\n"
