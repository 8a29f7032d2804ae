"""A streamed HTTP response: server-sent events relayed as they come, keepalives between."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from prometheus_client import Gauge
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from app.api.client import ClientWatch
from app.errors import ClientClosedRequest, GatewayError, InternalError
from app.record import RequestRecord
from app.sse import DONE, KEEPALIVE, KEEPALIVE_INTERVAL_S, encode_error, encode_event

logger = logging.getLogger(__name__)


class EventStream:
    """The streaming HTTP response, as an ASGI app: each event is written as soon as it is
    ready, then `[DONE]`; `: keepalive` comments fill quiet intervals (paced by the client
    watch, which also cancels the stream when the client goes away).

    A failure after the first byte cannot change the status any more: it becomes one error
    event and the stream ends without `[DONE]`; the request record keeps its real status
    and outcome. On shutdown the server lets open streams finish within
    `server.shutdown_grace_s`, then cancels them.
    """

    status_code = 200

    def __init__(
        self,
        events: AsyncIterator[BaseModel],
        client: ClientWatch,
        record: RequestRecord,
        streams: Gauge | None = None,
    ) -> None:
        self._events = events
        self._client = client
        self._record = record
        self._streams = streams
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

        client.pace(keepalive, KEEPALIVE_INTERVAL_S)
        if streams is not None:
            streams.inc()
        try:
            with client.closing():
                ended = await self._relay(send)
                client.stop()
                await send({"type": "http.response.body", "body": ended, "more_body": False})
        except GatewayError as exc:  # the client went away: nobody is left to tell
            self._record.failed(exc.status_code, exc.code)
        finally:
            client.stop()
            if streams is not None:
                streams.dec()
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _relay(self, send: Send) -> bytes:
        """Send every event; return what ends the stream: `[DONE]`, or nothing after an
        error event."""
        sent = self._client.sent
        try:
            async for event in self._events:
                data = encode_event(event)
                await send({"type": "http.response.body", "body": data, "more_body": True})
                sent()
        except GatewayError as exc:
            if isinstance(exc, ClientClosedRequest):
                raise
            error = exc
        except Exception:
            logger.exception("stream failed after the first byte")
            error = InternalError("the gateway hit an unexpected error")
        else:
            return DONE
        logger.warning("stream failed after the first byte: %s", error.message)
        self._record.failed(error.status_code, error.code, error.provider)
        await send({"type": "http.response.body", "body": encode_error(error), "more_body": True})
        return b""
