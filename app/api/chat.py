"""POST /v1/chat/completions: parse, check the key's rights and limits, answer or stream."""

from __future__ import annotations

from starlette.responses import Response

from app.api.endpoints import Incoming
from app.api.replies import JSON, Reply
from app.api.stream import EventStream, PendingStream, chat_body, start_stream
from app.wire.reading import read_chat_request


async def create_chat_completion(incoming: Incoming) -> Reply:
    gateway, record = incoming.gateway, incoming.record
    chat = await read_chat_request(incoming.body, gateway.shape)
    record.model, record.stream = chat.model, bool(chat.stream)
    record.model_label = gateway.router.label(chat.model)
    key_rate = gateway.admit(incoming.key, chat.model, cost=chat.choice_count)
    cache = gateway.cache_control(incoming.scope, incoming.key)
    if chat.stream:
        quiet_s = gateway.config.server.stream_keepalive_s
        events = await start_stream(gateway.service.stream(chat, key_rate, cache), quiet_s)
        body = chat_body(events, record)
        pending = isinstance(events, PendingStream)
        return EventStream(body, incoming.client, record, gateway.metrics.streams, pending=pending)
    completion = await gateway.service.complete(chat, key_rate, cache)
    return Response(
        completion.model_dump_json(),
        media_type=JSON,
        headers={"x-gateway-overhead-ms": record.overhead_header()},
    )
