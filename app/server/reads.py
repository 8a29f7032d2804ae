"""How request bytes travel from the socket to the application: read into one reused buffer,
parsed there, and handed over a body piece at a time, each byte copied once on the way."""

from __future__ import annotations

import asyncio
from collections import deque

from starlette.types import Message
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

# As much as one read takes from a socket (asyncio's own reads take this much).
READ_BYTES = 256 * 1024


class BufferedReads(asyncio.BufferedProtocol):
    """A connection as the event loop sees it: the socket is read straight into a buffer,
    and the HTTP protocol parses each read from there. A plain protocol gets every read as
    new bytes: one more copy of every byte of a 4 MB image, in fresh memory.

    All connections of a worker share the buffer. The loop reads one socket at a time and
    hands the read over at once, and the parser keeps nothing of it: what it passes on
    (URL, headers, body pieces) it copies out."""

    _buffer = memoryview(bytearray(READ_BYTES))

    def __init__(self, http: asyncio.Protocol) -> None:
        self.http = http

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.http.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.http.connection_lost(exc)

    def pause_writing(self) -> None:
        self.http.pause_writing()

    def resume_writing(self) -> None:
        self.http.resume_writing()

    def eof_received(self) -> bool | None:
        return self.http.eof_received()

    def get_buffer(self, sizehint: int) -> memoryview:  # noqa: ARG002 (any size hinted)
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.http.data_received(self._buffer[:nbytes])  # type: ignore[arg-type]


class PiecesCycle(RequestResponseCycle):
    """uvicorn's request cycle, but each piece of the body reaches the application as the
    parser gave it. uvicorn's own gathers the pieces in a bytearray and copies that into
    new bytes on each `receive`: two more copies of every byte of a 4 MB image. Reading
    pauses while more than uvicorn's high-water mark waits unread, as it does there."""

    pieces: deque[bytes]
    waiting: int

    @classmethod
    def adopt(cls, cycle: RequestResponseCycle) -> None:
        cycle.__class__ = cls
        assert isinstance(cycle, cls)
        cycle.pieces, cycle.waiting = deque(), 0

    def add(self, piece: bytes) -> None:
        self.pieces.append(piece)
        self.waiting += len(piece)
        if self.waiting > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        self.message_event.set()

    async def receive(self) -> Message:  # type: ignore[override]
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not (self.disconnected or self.response_complete or self.pieces):
            self.flow.resume_reading()
            await self.message_event.wait()
            self.message_event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        piece = self.pieces.popleft() if self.pieces else b""
        self.waiting -= len(piece)
        if self.waiting <= HIGH_WATER_LIMIT:
            self.flow.resume_reading()
        more = bool(self.pieces) or self.more_body
        return {"type": "http.request", "body": piece, "more_body": more}
