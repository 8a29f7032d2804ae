"""Driving a provider through its one door, as the chat service does."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from app.providers.base import Call, Provider
from app.service.answers import Stamp, stream_of, whole_answer
from app.wire.schemas import ChatCompletion, ChatCompletionChunk


async def answer(provider: Provider, call: Call) -> ChatCompletion:
    """The whole answer, as a non-streamed request gets it."""
    return await whole_answer(provider.execute(call, stream=False), call.request.model)


async def streamed(provider: Provider, call: Call) -> list[ChatCompletionChunk]:
    """Every chunk of the stream a streamed request gets, role chunk first."""
    events = provider.execute(call, stream=True)
    stamp = Stamp(call.request.model)
    return [chunk async for chunk in stream_of(events, stamp, call.request.choice_count)]


def chunks_of(provider: Provider, call: Call) -> AsyncGenerator[ChatCompletionChunk]:
    """The stream a streamed request gets, not yet read."""
    return stream_of(
        provider.execute(call, stream=True), Stamp(call.request.model), call.request.choice_count
    )
