"""POST /v1/chat/completions: parse, check the key's rights and limits, answer or stream."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.responses import Response

from app.api.endpoints import Incoming
from app.api.replies import JSON, Reply
from app.api.stream import EventStream, chat_body
from app.errors import GatewayError
from app.wire.inline import MIN_INLINE_CHARS, InlineImages
from app.wire.schemas import ChatCompletionRequest, InlineChatRequest
from app.wire.shape import RequestShape
from app.wire.validation import validation_error


async def create_chat_completion(incoming: Incoming) -> Reply:
    gateway, record = incoming.gateway, incoming.record
    chat = await read_request(incoming.body, gateway.shape)
    record.model, record.stream = chat.model, bool(chat.stream)
    record.model_label = gateway.router.label(chat.model)
    key_rate = gateway.admit(incoming.key, chat.model, cost=chat.choice_count)
    if chat.stream:
        events, record.provider = await gateway.service.stream(chat, key_rate)
        body = chat_body(events, record)
        return EventStream(body, incoming.client, record, gateway.metrics.streams)
    completion, record.provider = await gateway.service.complete(chat, key_rate)
    return Response(
        completion.model_dump_json(),
        media_type=JSON,
        headers={"x-gateway-overhead-ms": f"{record.overhead_ms():.3f}"},
    )


async def read_request(body: bytes | bytearray, shape: RequestShape) -> ChatCompletionRequest:
    """The chat request in `body`, once its shape is within the limits; else a 400.

    Large data URIs in image parts stay in `body` (the request's `inline`): cutting them out
    is a few C-speed searches, and what is left is parsed as any small body. A data URI
    anywhere else has the whole body parsed, as do bodies that fail to parse (so that their
    errors are those of the whole body)."""
    lifted = InlineImages.lift(body) if len(body) > MIN_INLINE_CHARS else None
    if lifted is not None:
        inline, skeleton = lifted
        chat = await shape.parse(skeleton, lambda part, _: _parse_skeleton(part, shape, inline))
        if chat is not None:
            return chat
    return await shape.parse(body, parse_request)


def _parse_skeleton(
    skeleton: bytes | bytearray, shape: RequestShape, inline: InlineImages
) -> ChatCompletionRequest | None:
    try:
        payload = shape.load(skeleton)
        if inline.only_in_image_urls(payload):
            return InlineChatRequest.keeping(payload, inline)
    except (GatewayError, ValidationError):
        pass
    return None


def parse_request(body: bytes | bytearray, shape: RequestShape) -> ChatCompletionRequest:
    """The chat request in `body`, all of it parsed; else a 400."""
    payload = shape.load(body)
    try:
        return ChatCompletionRequest.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None
