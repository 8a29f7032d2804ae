"""POST /v1/chat/completions, answered as plain ASGI ahead of FastAPI's middleware stack.

This is the route every token passes through, so it skips the layers the other routes use:
the request id, error envelopes and body limit are applied here, in one place, and a stream
is written straight to the server (`app.sse.EventStream`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.context import current_request
from app.errors import (
    ClientClosedRequest,
    GatewayError,
    InternalError,
    RequestTooLarge,
    error_response,
)
from app.gateway import Gateway, authorize_model
from app.logs import request_logged
from app.middleware import open_request
from app.request_shape import RequestShape
from app.schemas import ChatCompletionRequest
from app.sse import EventStream
from app.validation import validation_error

T = TypeVar("T")
logger = logging.getLogger(__name__)

PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
UNKNOWN_MODEL = "unknown"


class ChatCompletions:
    """The ASGI app for `POST` on `PATHS`."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._shape = RequestShape(gateway.config.requests)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = open_request(scope)
        try:
            reply = await self._answer(scope, receive)
        except GatewayError as exc:
            reply = error_response(exc)
        except Exception:
            logger.exception("unexpected error on POST %s", scope["path"])
            reply = error_response(InternalError("the gateway hit an unexpected error"))
        reply.raw_headers.append((b"x-request-id", request_id))
        await reply(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive) -> Response | EventStream:
        gateway = self._gateway
        connection = HTTPConnection(scope)
        key = gateway.authenticate(connection)
        body = await read_body(connection, receive, gateway.config.server.max_request_bytes)
        chat = await self._shape.parse(body, parse_request)
        authorize_model(key, chat.model)
        if key is not None:
            await gateway.limiter.check(f"key:{key.label}", key.rpm, "this key")
        metrics, stream = gateway.metrics, bool(chat.stream)
        # Model names that route nowhere are the client's to invent: they share one label
        # rather than each adding a series to /metrics.
        label = chat.model if gateway.router.owner(chat.model) else UNKNOWN_MODEL
        with (
            metrics.track(label, stream=stream) as outcome,
            request_logged(chat.model, lambda: outcome.provider, stream=stream),
        ):
            if stream:
                events, outcome.provider = await gateway.service.stream(chat)
                return EventStream(events)
            work = gateway.service.complete(chat)
            completion, outcome.provider = await unless_disconnected(receive, work)
            overhead_ms = current_request().overhead_ms()
            metrics.overhead.labels(chat.model, outcome.provider).observe(overhead_ms / 1000)
            return Response(
                completion.model_dump_json(),
                media_type="application/json",
                headers={"x-gateway-overhead-ms": f"{overhead_ms:.3f}"},
            )


async def read_body(connection: HTTPConnection, receive: Receive, limit: int) -> bytes | bytearray:
    """The request body, refused with 413 as soon as it is known to be over `limit`. A body in
    pieces grows in one buffer: pieces joined at the end would hold it twice for a moment."""
    declared = connection.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"the request body is over {limit} bytes")
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientClosedRequest("the client closed the request")
        chunk: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) + len(chunk) > limit:
            raise RequestTooLarge(f"the request body is over {limit} bytes")
        if not (body or more):
            return chunk  # the usual body in one piece, not copied
        body += chunk
        if not more:
            return body


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Await `work`, cancelled as soon as the client goes away: its upstream requests close
    and its job polling stops instead of running on for nobody."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        # The body has been read: per ASGI, the next message is the disconnect.
        if (await receive())["type"] == "http.disconnect":
            gone = True
            task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if gone and task.uncancel() == 0:
            raise ClientClosedRequest("the client closed the request") from None
        raise
    finally:
        watcher.cancel()


def parse_request(body: bytes | bytearray, shape: RequestShape) -> ChatCompletionRequest:
    payload = shape.load(body)
    try:
        return ChatCompletionRequest.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(RequestValidationError(exc.errors())) from None
