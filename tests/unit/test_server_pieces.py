"""The server's request cycle: body pieces reach the application in order, as they came, with
reading paused while too much waits unread."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from app.server.reads import PiecesCycle

pytestmark = pytest.mark.anyio


class Transport:
    """What the cycle and its flow control ask of a socket transport."""

    def __init__(self) -> None:
        self.paused = False
        self.written: list[bytes] = []

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.written.append(data)


def cycle_on(transport: Transport) -> PiecesCycle:
    logger = logging.getLogger("test")
    cycle = RequestResponseCycle(
        scope=cast(Any, {"type": "http"}),
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=logger,
        access_logger=logger,
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=True,
        on_response=lambda: None,
    )
    PiecesCycle.adopt(cycle)
    assert isinstance(cycle, PiecesCycle)
    return cycle


async def test_pieces_come_in_order_each_as_it_came() -> None:
    cycle = cycle_on(Transport())
    pieces = [b"first", b"second", b"third"]
    for piece in pieces:
        cycle.add(piece)
    cycle.more_body = False

    messages: list[dict[str, Any]] = [dict(await cycle.receive()) for _ in pieces]

    assert [m["body"] for m in messages] == pieces
    assert all(m["body"] is piece for m, piece in zip(messages, pieces, strict=True))  # no copy
    assert [m["more_body"] for m in messages] == [True, True, False]


async def test_reading_pauses_while_too_much_waits_and_resumes_as_it_is_read() -> None:
    transport = Transport()
    cycle = cycle_on(transport)
    half = b"x" * (HIGH_WATER_LIMIT // 2 + 1)

    paused = []
    cycle.add(half)
    paused.append(transport.paused)
    cycle.add(half)
    paused.append(transport.paused)
    await cycle.receive()
    paused.append(transport.paused)

    assert paused == [False, True, False]


async def test_a_receive_waits_for_the_next_piece() -> None:
    cycle = cycle_on(Transport())
    waiting = asyncio.ensure_future(cycle.receive())
    await asyncio.sleep(0)
    assert not waiting.done()

    cycle.add(b"late")
    message = await waiting

    assert message["body"] == b"late"
    assert message["more_body"] is True
