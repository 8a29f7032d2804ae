"""uvicorn's httptools protocol with the gateway's connection limits: header size, head and
body read timeouts, keep-alive idle time and connections per worker."""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.types import Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.api.replies import error_reply
from app.config import ServerConfig
from app.errors import (
    GatewayError,
    RequestHeaderTooLarge,
    RequestTimeout,
    ServerBusy,
)
from app.server.reads import BufferedReads, PiecesCycle

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application
    from uvicorn.server import ServerState

logger = logging.getLogger(__name__)

HEALTH_PATH = "/health"
RETRY_AFTER_S = 1
# After a refusal, what the client still sends is read and dropped for this long: closing
# on unread data would reset the connection, and the client might never see the refusal.
LINGER_S = 2.0


class GatewayServerConfig(uvicorn.Config):
    """uvicorn's config, carrying `server:` limits to each worker's protocol (it is pickled
    to the workers with them)."""

    def __init__(self, app: str, *, limits: ServerConfig, **options: Any) -> None:
        super().__init__(app, http=GuardedConnection, **options)  # type: ignore[arg-type]
        self.limits = limits


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One connection, held to `server:` limits. A head must arrive whole within
    `header_timeout_s` and `max_header_bytes` (counted as it arrives, so a huge header is
    refused, 431, before it is buffered), a body within `body_timeout_s` of its head (408
    otherwise). A connection opened while the worker holds `max_connections` others gets
    /health answered and anything else 503, and is closed after that one answer."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        assert isinstance(config, GatewayServerConfig)
        self.limits = limits = config.limits
        self.timeout_keep_alive = limits.keepalive_timeout_s  # type: ignore[assignment]
        self._reading_head = True
        self._head_bytes = 0
        self._chunk_bytes = 0
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.app = OverCapacity(self.app)
        self._read_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._chunk_bytes = len(data)
        if self._reading_head:
            self._head_bytes += self._chunk_bytes
        super().data_received(data)
        if self._reading_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(RequestHeaderTooLarge(self._header_message()))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_late)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._stop_timer()
        limit = self.limits.max_header_bytes
        # Counted by chunk, the head may look larger than it is: measure it when that matters.
        if self._head_bytes + self._chunk_bytes > limit and self._head_size() > limit:
            self.app = Refusal(RequestHeaderTooLarge(self._header_message()))
        self._head_bytes = 0
        # A pipelined request waits, unread, for the one before it: its clock starts with it.
        if self.cycle is None or self.cycle.response_complete:
            self._read_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_late)
        super().on_headers_complete()
        PiecesCycle.adopt(self.cycle)

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if not isinstance(cycle, PiecesCycle):
            super().on_body(body)
        elif not (
            cycle.response_complete or (self.parser.should_upgrade() and self._should_upgrade())
        ):
            cycle.add(body)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # this starts the next pipelined request, if any
        cycle = self.cycle
        if self._read_timer is None and not cycle.response_complete and cycle.more_body:
            self._read_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_late)

    def on_message_complete(self) -> None:
        self._stop_timer()
        super().on_message_complete()

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _header_message(self) -> str:
        return f"the request line and headers are over {self.limits.max_header_bytes} bytes"

    def _stop_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _head_late(self) -> None:
        self._read_timer = None
        if self._head_bytes:
            self._refuse(RequestTimeout("the request head did not arrive in time"))
        elif not self.transport.is_closing():
            self.transport.close()  # a connection that never asked for anything

    def _body_late(self) -> None:
        self._read_timer = None
        cycle = self.cycle
        answered = cycle is None or cycle.response_started
        if cycle is not None:
            # The application sees the client as gone, and what it sends is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        if answered:
            self.transport.close()
        else:
            self._refuse(RequestTimeout("the request body did not arrive in time"))

    def _refuse(self, error: GatewayError) -> None:
        """Answer with `error` outside any request cycle, and close the connection."""
        if self.transport.is_closing():
            return
        body = error_reply(error).body
        head = STATUS_LINE[error.status_code] + (
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(body)
        )
        self.transport.write(head + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.transport.set_protocol(Draining(self, self.transport))
        else:
            self.transport.close()


class GuardedConnection(BufferedReads):
    """What uvicorn makes for each connection: `GuardedHttpToolsProtocol`, reading into
    the worker's shared buffer."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(GuardedHttpToolsProtocol(config, server_state, app_state, _loop))


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


class Refusal:
    """Answers every request with one error, and closes the connection."""

    def __init__(self, error: GatewayError) -> None:
        error.headers["connection"] = "close"
        self._response = error_reply(error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._response(scope, receive, send)


class OverCapacity:
    """A connection over the cap: `/health` is answered, anything else is 503 with
    `Retry-After`, and the connection closes after its answer."""

    def __init__(self, app: ASGI3Application) -> None:
        self._app = app
        self._busy = Refusal(
            ServerBusy(
                "the gateway is at its connection limit; retry shortly",
                headers={"retry-after": str(RETRY_AFTER_S)},
            )
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != HEALTH_PATH:
            await self._busy(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"connection", b"close")]
            await send(message)

        await self._app(scope, receive, send_closing)  # type: ignore[arg-type]


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
