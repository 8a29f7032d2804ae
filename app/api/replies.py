"""HTTP replies the endpoints share: JSON bodies, and every error as OpenAI's envelope."""

from __future__ import annotations

from typing import Protocol

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.errors import GatewayError

JSON = "application/json"


class Reply(Protocol):
    """What a handler returns: an ASGI app with its status and headers known up front."""

    status_code: int
    raw_headers: list[tuple[bytes, bytes]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


def json_reply(payload: object, status_code: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status_code, media_type=JSON)


def error_reply(error: GatewayError) -> Response:
    """An error as OpenAI's envelope. The only place an error body is built."""
    return Response(
        orjson.dumps(error.to_envelope()),
        status_code=error.status_code,
        headers=error.headers,
        media_type=JSON,
    )
