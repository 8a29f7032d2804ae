"""Server-sent events, both ways: our OpenAI-style stream out, and upstream streams in."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from httpx_sse import EventSource
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.errors import GatewayError, InternalError

logger = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
KEEPALIVE_INTERVAL_S = 5.0


def encode_data(payload: bytes) -> bytes:
    """One `data:` event carrying a JSON payload (which never contains a newline)."""
    return b"data: " + payload + b"\n\n"


def encode_event(model: BaseModel) -> bytes:
    return encode_data(model.model_dump_json().encode())


def encode_error(error: GatewayError) -> bytes:
    return encode_data(orjson.dumps(error.to_envelope()))


def _keepalive() -> ServerSentEvent:
    return ServerSentEvent(comment="keepalive")


async def sse_body(events: AsyncIterator[BaseModel]) -> AsyncIterator[bytes]:
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


def event_stream_response(
    events: AsyncIterator[BaseModel], *, grace_s: float = 0, headers: dict[str, str] | None = None
) -> EventSourceResponse:
    """The streaming HTTP response: `: keepalive` comments while the stream is quiet, and on
    shutdown up to `grace_s` for the stream to finish before it is cut."""
    return EventSourceResponse(
        sse_body(events),
        headers=headers,
        ping=KEEPALIVE_INTERVAL_S,
        ping_message_factory=_keepalive,
        shutdown_grace_period=grace_s,
    )


async def iter_sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data` of each upstream event, comments and keepalives skipped, until `[DONE]`.

    The body is still read to its end after `[DONE]`, so that the connection goes back to the
    pool instead of being closed. An upstream that closes without `[DONE]` simply ends the
    iteration: callers tell a finished stream from a broken one by what they saw.
    """
    done = False
    async for event in EventSource(response).aiter_sse():
        data: Any = event.data
        if done or not data:
            continue
        if data == "[DONE]":
            done = True
            continue
        yield data
