"""A streamed HTTP response: server-sent events relayed as they come, keepalives between."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator

from prometheus_client import Gauge
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from app.api.client import ClientWatch
from app.errors import ClientClosedRequest, GatewayError, InternalError
from app.observe.record import RequestRecord
from app.wire.sse import DONE, KEEPALIVE, encode_error, encode_event

logger = logging.getLogger(__name__)


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
    ) -> None:
        self._body = body
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

        client.pace(keepalive)
        if streams is not None:
            streams.inc()
        sent = client.sent
        try:
            with client.closing():
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
