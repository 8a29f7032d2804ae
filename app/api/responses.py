"""The Responses API: `POST /v1/responses` over the same chat service as chat completions,
and the stored responses (`GET`/`DELETE /v1/responses/{id}`, `/input_items`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs

import orjson
from starlette.responses import Response

from app.api.endpoints import Incoming
from app.api.replies import JSON, Reply, json_reply
from app.api.stream import EventStream, PendingStream, start_stream
from app.errors import InvalidRequest
from app.observe.record import ANONYMOUS, RequestRecord
from app.responses.events import ResponseStream, encode
from app.responses.items import DEFAULT_PAGE, MAX_PAGE
from app.responses.params import ResponsesParams
from app.responses.payload import response_data
from app.responses.schemas import ResponsesRequest, read_responses_request
from app.responses.store import ResponseStore
from app.responses.translate import ChatMessage, Origins, input_messages, to_chat_request
from app.service.cache import CacheControl
from app.service.gateway import Gateway
from app.service.limits import Limit
from app.wire.schemas import ChatCompletionRequest
from app.wire.shape import prompt_extras

# What of a Responses request becomes prompt besides its input.
_PROMPT_FIELDS = {"instructions", "user", "tools", "text"}


@dataclass(frozen=True)
class Turn:
    """One Responses request as the chat service takes it: the conversation it continues
    (`history`), its own input as chat messages, the chat request, and how errors name the
    Responses request's fields."""

    request: ResponsesRequest
    owner: str
    history: Sequence[ChatMessage]
    input: Sequence[ChatMessage]
    chat: ChatCompletionRequest
    params: ResponsesParams


async def create_response(incoming: Incoming) -> Reply:
    gateway, record = incoming.gateway, incoming.record
    request = await read_responses_request(incoming.body, gateway.shape)
    record.model, record.stream = request.model, bool(request.stream)
    record.model_label = gateway.router.label(request.model)
    key_rate = gateway.admit(incoming.key, request.model)
    async with gateway.limiter.key_first(key_rate):
        turn = await _turn(incoming.gateway, request, _owner(incoming))
    cache = gateway.cache_control(incoming.scope, incoming.key)
    if request.stream:
        return await _stream(incoming, turn, key_rate, cache)
    with turn.params.naming():
        completion = await gateway.service.complete(turn.chat, key_rate, cache)
    # Built as plain data and serialised once: the request and the completion were validated
    # already, and this is what the client gets and what is stored.
    response = response_data(completion, request)
    answer = orjson.dumps(response)
    await gateway.responses.save(
        request,
        response,
        owner=turn.owner,
        history=turn.history,
        turn=turn.input,
        response_json=answer,
    )
    return Response(
        answer,
        media_type=JSON,
        headers={"x-gateway-overhead-ms": record.overhead_header()},
    )


async def _turn(gateway: Gateway, request: ResponsesRequest, owner: str) -> Turn:
    """The request read into a chat request: the stored conversation it continues and the
    stored items it refers to looked up, the request caps checked for the whole of it."""
    store, history = gateway.responses, []
    if request.previous_response_id:
        history = await store.conversation(request.previous_response_id, owner=owner)
    await store.expand_references(request, owner=owner)
    origins: Origins = []
    messages = input_messages(request, origins)
    # The whole conversation goes upstream: the request caps hold for it, not only `input`,
    # and its text shares one budget with the instructions, tools and schemas.
    extra = prompt_extras(request.model_dump(include=_PROMPT_FIELDS, exclude_none=True))
    gateway.shape.check_messages([*history, *messages], param="input", extra=extra)
    params = ResponsesParams(request, len(history), origins)
    with params.naming():
        chat = to_chat_request(request, history, messages)
    return Turn(request, owner, history, messages, chat, params)


async def _stream(
    incoming: Incoming, turn: Turn, key_rate: Limit | None, cache: CacheControl | None
) -> Reply:
    gateway, record = incoming.gateway, incoming.record
    opening = turn.params.named(gateway.service.stream(turn.chat, key_rate, cache))
    chunks = await start_stream(opening, gateway.config.server.stream_keepalive_s)
    pending = isinstance(chunks, PendingStream)
    stream = ResponseStream(
        turn.request, chunks, limits=gateway.config.responses, head_sent=pending
    )
    body = _stream_body(stream, turn, gateway.responses, record)
    return EventStream(body, incoming.client, record, gateway.metrics.streams, pending=pending)


async def retrieve_response(incoming: Incoming) -> Response:
    stored = await incoming.gateway.responses.get(_id(incoming), owner=_owner(incoming))
    return json_reply(stored)


async def delete_response(incoming: Incoming) -> Response:
    deleted = await incoming.gateway.responses.delete(_id(incoming), owner=_owner(incoming))
    return Response(deleted.model_dump_json(), media_type=JSON)


async def list_input_items(incoming: Incoming) -> Response:
    query = {name: values[-1] for name, values in parse_qs(incoming.query).items()}
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'", param="order")
    limit = query.get("limit", str(DEFAULT_PAGE))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_PAGE}", param="limit")
    page = await incoming.gateway.responses.list_input_items(
        _id(incoming),
        owner=_owner(incoming),
        order=order,
        limit=int(limit),
        after=query.get("after"),
    )
    return json_reply(page)


async def _stream_body(
    stream: ResponseStream, turn: Turn, store: ResponseStore, record: RequestRecord
) -> AsyncGenerator[bytes]:
    """The events as they come; once they have ended, the request's record learns how (the
    stream itself says a failure with `error` and `response.failed`), and the response is
    stored."""
    async for batch in stream.batches():
        yield b"".join([encode(event) for event in batch])
    if stream.error is not None:
        error = stream.error
        record.failed(error.status_code, error.code, error.provider)
    await store.save(
        turn.request, stream.response, owner=turn.owner, history=turn.history, turn=turn.input
    )


def _owner(incoming: Incoming) -> str:
    return incoming.key.label if incoming.key is not None else ANONYMOUS


def _id(incoming: Incoming) -> str:
    return incoming.params["response_id"]
