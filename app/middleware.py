"""Every request's id and clocks: pure-ASGI middleware for FastAPI's routes, and
`open_request` for the chat route, which is served ahead of FastAPI."""

from __future__ import annotations

import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.context import start_request

REQUEST_ID_HEADER = "x-request-id"
_MAX_ID_LENGTH = 128


def open_request(scope: Scope) -> bytes:
    """Start the request's context under the client's `x-request-id` (or a new one), and
    return the id to echo."""
    request_id = _client_request_id(scope) or uuid.uuid4().hex
    scope.setdefault("state", {})["request_id"] = request_id
    start_request(request_id)
    return request_id.encode("latin-1")


class RequestContextMiddleware:
    """Echoes the client's `x-request-id` (or makes one) and starts the request's timings."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = open_request(scope).decode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)


def _client_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1").strip()
            if 0 < len(text) <= _MAX_ID_LENGTH and text.isprintable():
                return text
    return None
