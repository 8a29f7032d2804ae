"""Server-sent events, both ways: our OpenAI-style stream out, and upstream streams in."""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections.abc import AsyncGenerator, AsyncIterator

import httpx
import orjson

# The decoders behind httpx-sse's `EventSource`, fed directly (see `_event_data`).
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from app.config import DEFAULT_MAX_EVENT_BYTES
from app.errors import GatewayError, InternalError, UpstreamError

logger = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keepalive\n\n"
_utf8 = codecs.getincrementaldecoder("utf-8")
KEEPALIVE_INTERVAL_S = 5.0
# The response extension that caps one upstream event (set where the stream is opened).
MAX_EVENT_BYTES = "max_event_bytes"


def encode_data(payload: bytes) -> bytes:
    """One `data:` event carrying a JSON payload (which never contains a newline)."""
    return b"data: " + payload + b"\n\n"


def encode_event(model: BaseModel) -> bytes:
    return encode_data(model.model_dump_json().encode())


def encode_error(error: GatewayError) -> bytes:
    return encode_data(orjson.dumps(error.to_envelope()))


async def sse_body(events: AsyncIterator[BaseModel]) -> AsyncGenerator[bytes]:
    """Frame an already-started stream: each chunk as an event as it comes, then `[DONE]`.

    A failure after the first byte cannot change the status any more, so it becomes one
    error event, and the stream ends without `[DONE]` (SPEC §5).
    """
    try:
        async for event in events:
            yield encode_event(event)
    except GatewayError as exc:
        logger.warning("stream failed after the first byte: %s", exc.message)
        yield encode_error(exc)
        return
    except Exception:
        logger.exception("stream failed after the first byte")
        yield encode_error(InternalError("the gateway hit an unexpected error"))
        return
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    yield DONE


class EventStream:
    """The streaming HTTP response, as an ASGI app: each event is written as soon as it is
    ready, a `: keepalive` comment goes out whenever the stream has been quiet for
    `KEEPALIVE_INTERVAL_S`, and the stream is cancelled (closing its upstream) as soon as
    the client goes away.

    One helper task per stream listens for the disconnect and paces the keepalives, so
    relaying a chunk costs one `send` and nothing else. On shutdown the server lets open
    streams finish within `server.shutdown_grace_s`, then cancels them.
    """

    def __init__(self, events: AsyncIterator[BaseModel]) -> None:
        self._body = sse_body(events)
        self._last_write = 0.0
        self._client_gone = False
        self.raw_headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]

    async def __call__(self, _scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        self._last_write = loop.time()
        watcher = asyncio.create_task(self._watch(receive, send, task))
        try:
            async for data in self._body:
                await send({"type": "http.response.body", "body": data, "more_body": True})
                self._last_write = loop.time()
            watcher.cancel()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not (self._client_gone and task.uncancel() == 0):
                raise
        finally:
            watcher.cancel()
            await self._body.aclose()

    async def _watch(self, receive: Receive, send: Send, stream: asyncio.Task[None]) -> None:
        """Until the stream ends: a keepalive after each quiet interval, and the stream's
        cancellation when the client disconnects (the body has been read, so per ASGI the
        next message is the disconnect)."""
        loop = asyncio.get_running_loop()
        while True:
            quiet_for = loop.time() - self._last_write
            if quiet_for >= KEEPALIVE_INTERVAL_S:
                await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
                self._last_write = loop.time()
                continue
            try:
                async with asyncio.timeout(KEEPALIVE_INTERVAL_S - quiet_for):
                    message = await receive()
            except TimeoutError:
                continue
            if message["type"] == "http.disconnect":
                self._client_gone = True
                stream.cancel()
                return


async def iter_sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data` of each upstream event, comments and keepalives skipped, until `[DONE]`.

    The body is still read to its end after `[DONE]`, so that the connection goes back to the
    pool instead of being closed. An upstream that closes without `[DONE]` simply ends the
    iteration: callers tell a finished stream from a broken one by what they saw.
    """
    done = False
    async for data in _event_data(response):
        if done or not data:
            continue
        if data == "[DONE]":
            done = True
            continue
        yield data


async def _event_data(response: httpx.Response) -> AsyncIterator[str]:
    """Each event's `data`, parsed by httpx-sse's line and event decoders.

    They are fed the body as it comes off the connection: an uncompressed stream (we ask
    for one) needs none of httpx's decoding layers, which cost more per event than the
    parsing itself. A compressed one goes through them.

    One event, its unfinished line included, may hold at most the response's
    `MAX_EVENT_BYTES` extension: an upstream sending a line or an event that never ends
    fails the stream there, instead of filling the gateway's memory.
    """
    limit = int(response.extensions.get(MAX_EVENT_BYTES, DEFAULT_MAX_EVENT_BYTES))
    identity = response.headers.get("content-encoding", "identity").lower() in ("", "identity")
    if identity:
        assert isinstance(response.stream, httpx.AsyncByteStream)
        body: AsyncIterator[bytes] = aiter(response.stream)
    else:
        body = response.aiter_bytes()
    text, lines, events = _utf8(errors="replace"), SSELineDecoder(), SSEDecoder()
    held = 0  # characters of the event being read
    async for chunk in body:
        for line in lines.decode(text.decode(chunk)):
            held = held + len(line) if line else 0
            event = events.decode(line.rstrip("\n"))
            if event is not None:
                yield event.data
        if held + sum(map(len, lines.buffer)) > limit:
            logger.warning("upstream stream event over %d bytes: cut", limit)
            raise UpstreamError(f"the upstream sent a stream event over {limit} bytes")
    for line in lines.decode(text.decode(b"", final=True)) + lines.flush():
        event = events.decode(line.rstrip("\n"))
        if event is not None:
            yield event.data
