"""POST /v1/chat/completions: read, validate, authorize, then hand over to the chat service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from app.context import current_request
from app.errors import ClientClosedRequest, InvalidJSON, RequestTooLarge
from app.gateway import authorize_model, gateway_of
from app.logs import request_logged
from app.schemas import ChatCompletionRequest
from app.sse import event_stream_response
from app.validation import validation_error

T = TypeVar("T")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to be over `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"the request body is over {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge(f"the request body is over {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientClosedRequest("the client closed the request") from None
    return b"".join(chunks)


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelled as soon as the client goes away: its upstream requests close
    and its job polling stops instead of running on for nobody."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        # The body has been read: per ASGI, the next message is the disconnect.
        if (await request.receive())["type"] == "http.disconnect":
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


def parse_request(body: bytes) -> ChatCompletionRequest:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidJSON("the request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise InvalidJSON("the request body must be a JSON object")
    try:
        return ChatCompletionRequest.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(RequestValidationError(exc.errors())) from None


async def create_chat_completion(request: Request) -> Response:
    """`POST /v1/chat/completions`. A plain Starlette endpoint: the hot path skips FastAPI's
    dependency solving, and the body is read and validated here, with OpenAI's errors."""
    gateway = gateway_of(request)
    key = gateway.authenticate(request)
    chat = parse_request(await read_body(request, gateway.config.server.max_request_bytes))
    authorize_model(key, chat.model)
    if key is not None:
        await gateway.limiter.check(f"key:{key.label}", key.rpm, "this key")
    metrics, stream = gateway.metrics, bool(chat.stream)
    with (
        metrics.track(chat.model, stream=stream) as outcome,
        request_logged(chat.model, lambda: outcome.provider, stream=stream),
    ):
        if stream:
            events, outcome.provider = await gateway.service.stream(chat)
            return event_stream_response(events, grace_s=gateway.config.server.shutdown_grace_s)
        work = gateway.service.complete(chat)
        completion, outcome.provider = await unless_disconnected(request, work)
        overhead_ms = current_request().overhead_ms()
        metrics.overhead.labels(chat.model, outcome.provider).observe(overhead_ms / 1000)
        return Response(
            completion.model_dump_json(),
            media_type="application/json",
            headers={"x-gateway-overhead-ms": f"{overhead_ms:.3f}"},
        )


routes = [
    Route("/v1/chat/completions", create_chat_completion, methods=["POST"]),
    Route("/chat/completions", create_chat_completion, methods=["POST"]),
]
