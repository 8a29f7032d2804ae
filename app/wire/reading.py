"""Reading a request body: from its bytes to a validated request in one call, its shape
checked against the `requests:` caps before anything is built, and a large body parsed on a
worker thread rather than on the event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError

from app.errors import GatewayError
from app.wire.inline import MIN_INLINE_CHARS, InlineImages
from app.wire.schemas import ChatCompletionRequest, InlineChatRequest
from app.wire.shape import RequestShape
from app.wire.validation import validation_error

T = TypeVar("T")
Body = bytes | bytearray

# Parsing and validating a body this large takes milliseconds: a worker thread does it.
OFF_LOOP_BYTES = 256 * 1024


async def read_chat_request(body: Body, shape: RequestShape) -> ChatCompletionRequest:
    """The chat request in `body`, once its shape is within the limits; else a 400.

    Large data URIs in image parts stay in `body` (the request's `inline`): cutting them out
    is a few C-speed searches, and what is left is parsed as any small body. A data URI
    anywhere else has the whole body parsed, as do bodies that fail to parse (so that their
    errors are those of the whole body)."""
    lifted = InlineImages.lift(body) if len(body) > MIN_INLINE_CHARS else None
    if lifted is not None:
        inline, skeleton = lifted
        chat = await _parsed(skeleton, shape, lambda part: _parse_skeleton(part, shape, inline))
        if chat is not None:
            return chat
    return await _parsed(body, shape, lambda whole: parse_chat_request(whole, shape))


async def read_request(
    body: Body, shape: RequestShape, build: Callable[[dict[str, object]], T]
) -> T:
    """`build` of the JSON object in `body`, once its shape is within the limits: the way any
    other request whose body is one JSON object is read (the Responses API's, say)."""
    return await _parsed(body, shape, lambda whole: build(shape.load(whole)))


def parse_chat_request(body: Body, shape: RequestShape) -> ChatCompletionRequest:
    """The chat request in `body`, all of it parsed; else a 400."""
    payload = shape.load(body)
    try:
        return ChatCompletionRequest.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


def _parse_skeleton(
    skeleton: Body, shape: RequestShape, inline: InlineImages
) -> ChatCompletionRequest | None:
    try:
        payload = shape.load(skeleton)
        if inline.only_in_image_urls(payload):
            return InlineChatRequest.keeping(payload, inline)
    except (GatewayError, ValidationError):
        pass
    return None


async def _parsed(body: Body, shape: RequestShape, parse: Callable[[Body], T]) -> T:
    """`parse(body)`: on the event loop for a small body, else on a worker thread."""
    if len(body) <= OFF_LOOP_BYTES:
        return parse(body)
    return await shape.parsing.run(lambda: parse(body))
