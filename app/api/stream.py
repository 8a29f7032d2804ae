"""A streamed HTTP response: server-sent events relayed as they come, keepalives between, and
a head sent early for an answer that is slow to start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from functools import partial
from typing import Any, Generic, TypeVar

from prometheus_client import Gauge
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from app.api.client import ClientWatch
from app.errors import ClientClosedRequest, GatewayError, InternalError
from app.observe.record import RequestRecord
from app.wire.sse import DONE, KEEPALIVE, encode_error, encode_event

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def start_stream(
    start: Coroutine[Any, Any, AsyncIterator[T]], quiet_s: float
) -> AsyncIterator[T]:
    """The stream `start` opens (the chat service's: its first chunk in hand, failures up to
    there raised as HTTP statuses that could fail over), if it opens within `quiet_s`
    (`server.stream_keepalive_s`). Otherwise a `PendingStream` that goes on waiting for it:
    its response head and keepalives go out meanwhile, so that nobody's idle timeout cuts a
    quiet upstream call (a non-streaming one working on an image, say). Failover goes on
    until the first chunk; a failure after the head is the stream's error event."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(start)
    # What `asyncio.wait(..., timeout=quiet_s)` does, with half its work: this runs on every
    # stream.
    ready: asyncio.Future[None] = loop.create_future()
    wake = partial(_wake, ready)
    task.add_done_callback(wake)
    timer = loop.call_later(quiet_s, wake, task)
    try:
        await ready
    except BaseException:  # the client went away, or the server is stopping
        await PendingStream(task).aclose()  # cancelled, or closed if it opened meanwhile
        raise
    finally:
        timer.cancel()
    if task.done():
        return task.result()
    return PendingStream(task)


def _wake(ready: asyncio.Future[None], _: object) -> None:
    if not ready.done():
        ready.set_result(None)


class PendingStream(Generic[T]):
    """A stream still waiting for its first chunk (`start_stream`): its first `__anext__`
    awaits it. A client that leaves cancels the wait, and with it the upstream call."""

    def __init__(self, opening: asyncio.Task[AsyncIterator[T]]) -> None:
        self._opening = opening
        self._chunks: AsyncIterator[T] | None = None

    def __aiter__(self) -> PendingStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._chunks is None:
            self._chunks = await self._opening  # cancelling this wait cancels the task
        return await anext(self._chunks)

    async def aclose(self) -> None:
        opening = self._opening
        if self._chunks is None and not opening.done():
            opening.cancel()
            return
        chunks = self._chunks
        if chunks is None and not opening.cancelled() and opening.exception() is None:
            chunks = opening.result()  # opened, but nobody read it: close it all the same
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


class EventStream:
    """The streaming HTTP response, as an ASGI app: each already framed event is written as
    soon as it is ready; `: keepalive` comments fill quiet intervals (paced by the client
    watch, which also cancels the stream when the client goes away). What an API's stream
    says when it fails after its first byte is up to its framing (`chat_body`, the
    Responses events). On shutdown the server lets open streams finish within
    `server.shutdown_grace_s`, then cancels them.
    """

    status_code = 200

    def __init__(
        self,
        body: AsyncGenerator[bytes],
        client: ClientWatch,
        record: RequestRecord,
        streams: Gauge | None = None,
        *,
        pending: bool = False,
    ) -> None:
        self._body = body
        self._client = client
        self._record = record
        self._streams = streams
        self._pending = pending  # its first event is still awaited: a keepalive goes first
        self.raw_headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002
        client, streams = self._client, self._streams
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

        async def keepalive() -> None:
            await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})

        client.pace(keepalive)
        if streams is not None:
            streams.inc()
        sent = client.sent
        try:
            with client.closing():
                if self._pending:
                    await keepalive()
                    sent()
                async for data in self._body:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                    sent()
                client.stop()
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except GatewayError as exc:  # the client went away: nobody is left to tell
            self._record.failed(exc.status_code, exc.code)
        finally:
            client.stop()
            if streams is not None:
                streams.dec()
            await self._body.aclose()


async def chat_body(
    events: AsyncIterator[BaseModel], record: RequestRecord
) -> AsyncGenerator[bytes]:
    """Chat completion chunks as events, then `[DONE]`. A failure after the first byte
    becomes one error event and the stream ends without `[DONE]`; the record keeps the
    failure's status and outcome."""
    try:
        async for event in events:
            yield encode_event(event)
    except ClientClosedRequest:
        raise
    except GatewayError as exc:
        error: GatewayError = exc
    except Exception:
        logger.exception("stream failed after the first byte")
        error = InternalError("the gateway hit an unexpected error")
    else:
        yield DONE
        return
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    # Its message may quote what the upstream said, and so the prompt: at debug only.
    logger.warning("stream failed after the first byte: %s", error.code)
    logger.debug("stream failed after the first byte: %s", error.message)
    record.failed(error.status_code, error.code, error.provider)
    yield encode_error(error)
