"""The Responses API: `POST /v1/responses` over the same chat service as chat completions,
and the stored responses (`GET`/`DELETE /v1/responses/{id}`, `/input_items`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from urllib.parse import parse_qs

import orjson
from starlette.responses import Response

from app.api.endpoints import Incoming
from app.api.replies import JSON, Reply, json_reply
from app.api.stream import EventStream
from app.errors import InvalidRequest
from app.observe.record import ANONYMOUS, RequestRecord
from app.responses.events import ResponseStream, encode
from app.responses.items import DEFAULT_PAGE, MAX_PAGE
from app.responses.params import ResponsesParams
from app.responses.payload import response_data
from app.responses.schemas import ResponsesRequest, read_responses_request
from app.responses.store import ResponseStore
from app.responses.translate import ChatMessage, Origins, input_messages, to_chat_request


async def create_response(incoming: Incoming) -> Reply:
    gateway, record = incoming.gateway, incoming.record
    request = await read_responses_request(incoming.body, gateway.shape)
    record.model, record.stream = request.model, bool(request.stream)
    record.model_label = gateway.router.label(request.model)
    key_rate = gateway.admit(incoming.key, request.model)
    owner, store = _owner(incoming), gateway.responses
    history: Sequence[ChatMessage] = ()
    origins: Origins = []
    async with gateway.limiter.key_first(key_rate):
        if request.previous_response_id:
            history = await store.conversation(request.previous_response_id, owner=owner)
        await store.expand_references(request, owner=owner)
        turn = input_messages(request, origins)
        # The whole conversation goes upstream: the request caps hold for it, not only `input`.
        gateway.shape.check_messages([*history, *turn], param="input")
        params = ResponsesParams(request, len(history), origins)
        with params.naming():
            chat = to_chat_request(request, history, turn)
    cache = gateway.cache_control(incoming.scope, incoming.key)
    if request.stream:
        with params.naming():
            chunks = await gateway.service.stream(chat, key_rate, cache)
        stream = ResponseStream(request, chunks, limits=gateway.config.responses)
        body = _stream_body(stream, request, store, record, owner, (history, turn))
        return EventStream(body, incoming.client, record, gateway.metrics.streams)
    with params.naming():
        completion = await gateway.service.complete(chat, key_rate, cache)
    # Built as plain data and serialised once: the request and the completion were validated
    # already, and this is what the client gets and what is stored.
    response = response_data(completion, request)
    answer = orjson.dumps(response)
    await store.save(
        request, response, owner=owner, history=history, turn=turn, response_json=answer
    )
    return Response(
        answer,
        media_type=JSON,
        headers={"x-gateway-overhead-ms": record.overhead_header()},
    )


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
    stream: ResponseStream,
    request: ResponsesRequest,
    store: ResponseStore,
    record: RequestRecord,
    owner: str,
    conversation: tuple[Sequence[ChatMessage], Sequence[ChatMessage]],
) -> AsyncGenerator[bytes]:
    """The events as they come; once they have ended, the request's record learns how (the
    stream itself says a failure with `error` and `response.failed`), and the response is
    stored."""
    async for batch in stream.batches():
        yield b"".join([encode(event) for event in batch])
    if stream.error is not None:
        error = stream.error
        record.failed(error.status_code, error.code, error.provider)
    history, turn = conversation
    await store.save(request, stream.response, owner=owner, history=history, turn=turn)


def _owner(incoming: Incoming) -> str:
    return incoming.key.label if incoming.key is not None else ANONYMOUS


def _id(incoming: Incoming) -> str:
    return incoming.params["response_id"]
