"""The Responses API: `POST /v1/responses` over the same chat service as chat completions,
and the stored responses (`GET`/`DELETE /v1/responses/{id}`, `/input_items`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from urllib.parse import parse_qs

from starlette.responses import Response

from app.api.endpoints import Incoming
from app.api.replies import JSON, Reply, json_reply
from app.api.stream import EventStream
from app.errors import GatewayError, InvalidRequest
from app.record import ANONYMOUS, RequestRecord
from app.request_shape import RequestShape
from app.responses.events import ResponseStream, encode
from app.responses.items import DEFAULT_PAGE, MAX_PAGE
from app.responses.output import to_response
from app.responses.schemas import ResponsesRequest, parse_request
from app.responses.store import ResponseStore
from app.responses.translate import ChatMessage, to_chat_request
from app.schemas import ChatCompletionChunk


async def create_response(incoming: Incoming) -> Reply:
    gateway, record = incoming.gateway, incoming.record
    request = await gateway.shape.parse(incoming.body, _parse)
    record.model, record.stream = request.model, bool(request.stream)
    record.model_label = gateway.router.label(request.model)
    key_rate = gateway.admit(incoming.key, request.model)
    owner, store = _owner(incoming), gateway.responses
    history: Sequence[ChatMessage] = ()
    try:
        if request.previous_response_id:
            history = await store.conversation(request.previous_response_id, owner=owner)
        chat = to_chat_request(request, history)
    except GatewayError:
        await gateway.limiter.check(key_rate)  # a key past its rate hears that first
        raise
    if request.stream:
        chunks, record.provider = await gateway.service.stream(chat, key_rate)
        stream = ResponseStream(request, _recorded(chunks, record))
        body = _stream_body(stream, request, store, owner, history)
        return EventStream(body, incoming.client, record, gateway.metrics.streams)
    completion, record.provider = await gateway.service.complete(chat, key_rate)
    response = to_response(completion, request)
    answer = response.model_dump_json()
    await store.save(request, response, owner=owner, history=history, response_json=answer)
    return Response(
        answer,
        media_type=JSON,
        headers={"x-gateway-overhead-ms": f"{record.overhead_ms():.3f}"},
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
    owner: str,
    history: Sequence[ChatMessage],
) -> AsyncGenerator[bytes]:
    """The events as they come; once they have ended, the response is stored."""
    async for event in stream.events():
        yield encode(event)
    await store.save(request, stream.response, owner=owner, history=history)


async def _recorded(
    chunks: AsyncIterator[ChatCompletionChunk], record: RequestRecord
) -> AsyncGenerator[ChatCompletionChunk]:
    """The chunks, with a failure after the first byte noted in the request's record (the
    stream itself says it with `error` and `response.failed`)."""
    try:
        async for chunk in chunks:
            yield chunk
    except GatewayError as exc:
        record.failed(exc.status_code, exc.code, exc.provider)
        raise
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _parse(body: bytes | bytearray, shape: RequestShape) -> ResponsesRequest:
    return parse_request(shape.load(body))


def _owner(incoming: Incoming) -> str:
    return incoming.key.label if incoming.key is not None else ANONYMOUS


def _id(incoming: Incoming) -> str:
    return incoming.params["response_id"]
