"""Request bodies: read whole within the limit, into buffers reused only once nothing holds them."""

from __future__ import annotations

import os
from typing import Any

import pytest

from app.api.bodies import MIN_POOLED_BYTES, BodyBuffers, read_body
from app.errors import ClientClosedRequest, RequestTooLarge

MB = 1024 * 1024


def scope_for(length: int | None) -> dict[str, Any]:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    return {"type": "http", "headers": headers}


def receiving(*chunks: bytes, disconnect: bool = False) -> Any:
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    if disconnect:
        messages[-1]["more_body"] = True
        messages.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


@pytest.mark.anyio
@pytest.mark.parametrize("declared", [True, False])
@pytest.mark.parametrize("size", [10, 3 * MB])
async def test_a_body_in_pieces_is_read_whole(declared: bool, size: int) -> None:
    data = os.urandom(size)
    pieces = [data[at : at + 65536] for at in range(0, size, 65536)] or [b""]

    body = await read_body(
        scope_for(size if declared else None), receiving(*pieces), 32 * MB, BodyBuffers(64 * MB)
    )

    assert body == data


@pytest.mark.anyio
async def test_a_body_shorter_than_declared_is_what_came() -> None:
    data = os.urandom(2 * MB)

    body = await read_body(
        scope_for(3 * MB), receiving(data[:MB], data[MB:]), 32 * MB, BodyBuffers(64 * MB)
    )

    assert body == data


@pytest.mark.anyio
async def test_a_body_over_the_limit_is_refused_declared_or_not() -> None:
    with pytest.raises(RequestTooLarge):
        await read_body(scope_for(5 * MB), receiving(b"x"), 4 * MB, BodyBuffers(0))
    with pytest.raises(RequestTooLarge):
        await read_body(scope_for(None), receiving(*[bytes(MB)] * 5), 4 * MB, BodyBuffers(0))
    with pytest.raises(ClientClosedRequest):
        await read_body(scope_for(None), receiving(b"{", disconnect=True), 4 * MB, BodyBuffers(0))


@pytest.mark.anyio
async def test_a_buffer_given_back_is_reused_for_a_body_of_about_its_size() -> None:
    buffers = BodyBuffers(64 * MB)
    first = await read_body(scope_for(3 * MB), receiving(*[b"a" * MB] * 3), 32 * MB, buffers)
    assert isinstance(first, bytearray)
    buffers.give_back(first)
    kept = id(first)
    del first

    second = await read_body(scope_for(2 * MB), receiving(*[b"b" * MB] * 2), 32 * MB, buffers)

    assert id(second) == kept
    assert isinstance(second, bytearray)
    assert second == b"b" * 2 * MB
    buffers.give_back(second)
    third = await read_body(scope_for(3 * MB), receiving(*[b"c" * MB] * 3), 32 * MB, buffers)
    assert third == b"c" * 3 * MB  # grown back within the memory it kept


def test_a_buffer_still_held_is_not_handed_out() -> None:
    buffers = BodyBuffers(64 * MB)
    buffers.give_back(bytearray(3 * MB))
    buffer = buffers.take(3 * MB)
    assert buffer is not None
    buffer[:5] = b"hello"
    view = memoryview(buffer)[:5]  # a stand-in's slice, say, still in use
    buffers.give_back(buffer)
    held = id(buffer)
    del buffer

    assert buffers.take(3 * MB) is None
    assert bytes(view) == b"hello"
    view.release()
    assert id(buffers.take(3 * MB)) == held


def test_at_most_keep_bytes_are_kept_and_small_buffers_never() -> None:
    buffers = BodyBuffers(10 * MB)
    for _ in range(5):
        buffers.give_back(bytearray(3 * MB))
    buffers.give_back(bytearray(MIN_POOLED_BYTES // 2))

    assert 0 < buffers.kept_bytes <= 10 * MB
    assert BodyBuffers(0).take(3 * MB) is None
    nothing = BodyBuffers(0)
    nothing.give_back(bytearray(3 * MB))
    assert nothing.kept_bytes == 0
