"""uvicorn's httptools protocol held to the gateway's connection limits: header size, head and
body read timeouts, and connections per worker.

uvicorn takes the protocol class of each connection as its `http=` option; this one is
uvicorn's own, with the limits added in the callbacks the HTTP parser and the event loop make
(`data_received`, `on_message_begin`, `on_url`, `on_header`, `on_headers_complete`,
`on_body`, `on_message_complete`, and uvicorn's `on_response_complete`). Everything else,
the request cycle included, is uvicorn's, but for what the cycle holds of a body between two
reads of the application (`BodyPieces`). A request the limits refuse never reaches uvicorn's
cycle: its answer is written here, and the connection closes.
"""

from __future__ import annotations

import asyncio
import http
import logging
import resource
from typing import TYPE_CHECKING, Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import ServerConfig
from app.errors import (
    GatewayError,
    InvalidRequest,
    RequestHeaderTooLarge,
    RequestTimeout,
    ServerBusy,
)
from app.errors.quoting import shortened

if TYPE_CHECKING:
    from uvicorn.server import ServerState

logger = logging.getLogger(__name__)

HEALTH_PATH = b"/health"
RETRY_AFTER_S = 1
# After a refusal, what the client still sends is read and dropped for this long: closing
# on unread data would reset the connection, and the client might never see the refusal.
LINGER_S = 2.0


class GatewayServerConfig(uvicorn.Config):
    """uvicorn's config, carrying `server:` limits to each worker's protocol (it is pickled
    to the workers with them)."""

    def __init__(self, app: str, *, limits: ServerConfig, **options: Any) -> None:
        super().__init__(
            app,
            http=LimitedHttpProtocol,
            # The gateway serves no WebSocket: an upgrade request is answered as a plain one.
            ws="none",
            timeout_keep_alive=limits.keepalive_timeout_s,  # type: ignore[arg-type]
            **options,
        )
        self.limits = limits
        self.connections = Connections()


class Connections:
    """How many connections one worker holds (each worker has its own copy of the config)."""

    def __init__(self) -> None:
        self.open = 0


class BodyPieces(bytearray):
    """What uvicorn's request cycle holds of a body between two reads of the application (its
    `body`): the pieces the parser gave, kept as they are. uvicorn adds each piece with `+=`,
    weighs them with `len()` and hands them on with `bytes()`, which joins them: a body read
    as it arrives is one piece at a time, handed on without a copy, where a `bytearray` copied
    every byte in and out again. (uvicorn 0.54's cycle, pinned; see
    tests/unit/test_library_seams.py.)"""

    __slots__ = ("_pieces", "_size")

    def __init__(self) -> None:
        super().__init__()
        self._pieces: list[bytes] = []
        self._size = 0

    def __iadd__(self, piece: bytes) -> BodyPieces:  # type: ignore[override,misc]
        self._pieces.append(piece)
        self._size += len(piece)
        return self

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        return b"".join(self._pieces)  # one piece: that piece itself


class LimitedHttpProtocol(HttpToolsProtocol):
    """One connection, held to `server:` limits.

    A head must arrive whole within `header_timeout_s` and `max_header_bytes` (counted as it
    arrives, so a huge header is refused, 431, before it is buffered); a body within
    `body_timeout_s` of its head (408 otherwise). A connection opened while the worker holds
    `max_connections` others gets `/health` answered and anything else 503, and is closed
    after that one answer.

    The gateway serves no other protocol: a request that asks to upgrade the connection
    (WebSocket, h2c, as `curl --http2` asks of an http:// URL) is answered as a plain request,
    and the connection closes after it. The HTTP parser stops at the end of such a request's
    head, so its body (of a declared length) is read here.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        assert isinstance(config, GatewayServerConfig)
        self._limits = config.limits
        self._connections = config.connections
        self._over_capacity = False
        self._transport_: asyncio.Transport | None = None
        # The request being read: whether its head is still coming, and how large it is.
        self._in_head = True
        self._head_chunks = 0  # bytes of the chunks the head came in (an upper bound)
        self._head_size = 0  # the request line and headers, counted exactly
        self._target = b""
        self._upgrade = b""  # the protocol the request asks to switch to, if any
        self._has_body = False
        self._length: int | None = None  # its declared Content-Length
        self._in_body = False
        # An upgrade request's body, read here: how much is left, once found in the stream.
        self._upgrade_body_left: int | None = None
        self._upgrade_body_found = False
        self._head_tail = b""  # the last 3 bytes of a head still arriving
        self._chunk_parsed = False  # whether a request ended in the chunk being parsed
        self._begun_in_chunk = False  # whether the request being read began in it
        self._begun_after_another = False  # ... after another one ended there
        self._timer: asyncio.TimerHandle | None = None
        # Requests handed to uvicorn whose answers have not ended yet.
        self._unanswered = 0
        # Whether the connection closes after the requests read so far have been answered.
        self._closing_after_answer = False
        self._done_reading = False
        self._refusal: GatewayError | None = None

    # The event loop's callbacks.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._transport_ = transport
        self._connections.open += 1
        self._over_capacity = self._connections.open > self._limits.max_connections
        self._start_timer(self._limits.header_timeout_s, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.open -= 1
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None or self._done_reading:
            return  # the connection is ending: what else comes is dropped
        if self._upgrade_body_found:
            self._read_upgrade_body(data)  # the parser reads nothing after an upgrade
            return
        tail, self._chunk_parsed, self._begun_in_chunk = self._head_tail, False, False
        if self._in_head:
            self._head_chunks += len(data)
        super().data_received(data)
        if self._upgrade_body_left is not None:
            self._find_upgrade_body(tail, data)
        elif self._in_head:
            if self._head_chunks > self._limits.max_header_bytes:
                self._refuse(RequestHeaderTooLarge(self._header_message()))
            self._head_tail = (tail + data[-3:])[-3:]
        elif tail:
            self._head_tail = b""

    # The HTTP parser's callbacks.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_chunks = self._head_size = 0
        self._target = b""
        self._upgrade = b""
        self._has_body = False
        self._length = None
        self._begun_in_chunk, self._begun_after_another = True, self._chunk_parsed
        if self._timer is None:
            self._start_timer(self._limits.header_timeout_s, self._head_late)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._target += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._head_size += len(name) + len(value) + 4
        name = name.lower()
        if name == b"upgrade":
            self._upgrade = value or b"?"
        elif name == b"content-length":
            self._length = int(value) if value.isdigit() else None
            self._has_body = self._length != 0
        elif name == b"transfer-encoding":
            self._has_body = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_timer()
        if self._refusal is not None:
            return
        if self._head_size > self._limits.max_header_bytes:
            self._refuse(RequestHeaderTooLarge(self._header_message()))
            return
        if self._over_capacity and self._target.partition(b"?")[0] != HEALTH_PATH:
            self._refuse(
                ServerBusy(
                    "the gateway is at its connection limit; retry shortly",
                    headers={"retry-after": str(RETRY_AFTER_S)},
                )
            )
            return
        if self._upgrade and self._has_body:
            if self._length is None:
                protocol = shortened(self._upgrade.decode("latin-1"))
                self._refuse(
                    InvalidRequest(
                        "the gateway does not switch protocols, and reads the body of a request "
                        f"that asks to ('Upgrade: {protocol}') only when its length is declared "
                        "(Content-Length): send it without the Upgrade header"
                    )
                )
                return
            self._upgrade_body_left = self._length
        # One answer on a connection over the cap, and none after an upgrade request: the
        # parser reads nothing more of a connection that asked to change protocols.
        self._closing_after_answer = self._over_capacity or bool(self._upgrade)
        self._in_body = True
        self._unanswered += 1
        super().on_headers_complete()
        # A pipelined request waits, unread, for the one before it: its clock starts with it.
        if self._unanswered == 1:
            self._start_timer(self._limits.body_timeout_s, self._body_late)

    def on_body(self, body: bytes) -> None:
        if self._refusal is None:
            cycle = self.cycle
            if type(cycle.body) is bytearray:  # a fresh one, after each read of the application
                cycle.body = BodyPieces()
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._chunk_parsed = True
        if self._refusal is None and self._upgrade_body_left is None:
            self._message_complete()

    def _message_complete(self) -> None:
        self._in_body = False
        self._done_reading = self._closing_after_answer
        self._stop_timer()
        super().on_message_complete()

    # uvicorn's callback when an answer has ended.

    def on_response_complete(self) -> None:
        self._unanswered -= 1
        super().on_response_complete()  # this starts the next pipelined request, if any
        if self._unanswered:
            if self._in_body and self._timer is None:
                self._start_timer(self._limits.body_timeout_s, self._body_late)
        elif self._refusal is not None:
            self._write_refusal()
        elif self._closing_after_answer:
            self._close()

    # An upgrade request's body.

    def _find_upgrade_body(self, tail: bytes, data: bytes) -> None:
        """Where, in the chunk the parser has just stopped in, the body of the upgrade request
        whose head ended there begins: after the first blank line from where its head
        began, in this chunk or (`tail` ending the last one) before it."""
        body_at = -1
        if not self._begun_in_chunk:
            ended = (tail + data[: self._limits.max_header_bytes]).find(b"\r\n\r\n")
            body_at = ended + 4 - len(tail) if ended >= 0 else -1
        elif not self._begun_after_another:  # else where its head began is not known here
            start = 0
            while data.startswith(b"\r\n", start):  # empty lines may come before a request
                start += 2
            ended = data.find(b"\r\n\r\n", start)
            body_at = ended + 4 if ended >= 0 else -1
        if body_at < 0:
            protocol = shortened(self._upgrade.decode("latin-1"))
            self._refuse(
                InvalidRequest(
                    "the gateway does not switch protocols, and can't read the body of a request "
                    f"that asks to ('Upgrade: {protocol}') after others on its connection: send "
                    "it without the Upgrade header"
                )
            )
            return
        self._upgrade_body_found = True
        self._read_upgrade_body(data[body_at:])

    def _read_upgrade_body(self, data: bytes) -> None:
        left = self._upgrade_body_left
        assert left is not None
        piece = data[:left]
        if piece:
            super().on_body(piece)
        self._upgrade_body_left = left = left - len(piece)
        if left == 0:
            self._upgrade_body_left, self._upgrade_body_found = None, False
            self._message_complete()

    # The limits.

    def _head_late(self) -> None:
        self._timer = None
        if self._head_chunks:
            self._refuse(RequestTimeout("the request head did not arrive in time"))
        else:
            self._close()  # a connection that never asked for anything, or no more

    def _body_late(self) -> None:
        self._timer = None
        if self._unanswered:
            # The application is still waiting for this body: it has not answered yet, as it
            # answers a request before its body has come only with a refusal in one piece.
            self._refuse(RequestTimeout("the request body did not arrive in time"))
        else:
            self._close()  # answered already; the rest of the body is not worth waiting for

    def _refuse(self, error: GatewayError) -> None:
        """Answer with `error` and close, once the answers before it have ended."""
        if self._refusal is None:
            self._refusal = error
            if not self._unanswered or self._in_body:
                self._write_refusal()

    def _write_refusal(self) -> None:
        """The refusal's answer, written outside any request cycle; what the client still
        sends is then read and dropped until it closes its side or `LINGER_S` passes."""
        transport = self._transport_
        error = self._refusal
        if transport is None or error is None or transport.is_closing():
            return
        body = orjson.dumps(error.to_envelope())
        headers = {**error.headers, "content-type": "application/json"}
        headers.update({"content-length": str(len(body)), "connection": "close"})
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        status = http.HTTPStatus(error.status_code)
        transport.write(
            f"HTTP/1.1 {status.value} {status.phrase}\r\n{head}\r\n".encode("latin-1") + body
        )
        if transport.can_write_eof():
            transport.write_eof()
            transport.set_protocol(Draining(self, transport))
        else:
            transport.close()

    def _close(self) -> None:
        if self._transport_ is not None and not self._transport_.is_closing():
            self._transport_.close()

    def _header_message(self) -> str:
        return f"the request line and headers are over {self._limits.max_header_bytes} bytes"

    def _start_timer(self, delay_s: float, callback: Any) -> None:
        self._stop_timer()
        self._timer = asyncio.get_running_loop().call_later(delay_s, callback)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Draining(asyncio.Protocol):
    """A refused connection's last moments: what arrives is dropped, and the connection
    closes when the client closes its side or after `LINGER_S`."""

    def __init__(self, owner: asyncio.Protocol, transport: asyncio.Transport) -> None:
        self._owner = owner
        self._deadline = asyncio.get_running_loop().call_later(LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> None:
        return None  # the transport then closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.cancel()
        self._owner.connection_lost(exc)


def raise_open_files_limit() -> None:
    """Lift the soft limit on open files to the hard one: every connection is a file, and
    `server.max_connections` per worker should meet no lower ceiling."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        logger.info("open files limit: %d", soft)
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        logger.warning("open files limit stays %d (hard limit %d): %s", soft, hard, exc)
        return
    logger.info("open files limit raised from %d to %d", soft, hard)
