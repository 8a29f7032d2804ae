"""The front layer every request passes, as plain ASGI: request id, endpoint look-up, gateway
key, body limit, the OpenAI error envelope, the catch-all, and one record per request that
becomes one access-log line and the request metrics when the response body has ended."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.bodies import BodyBuffers, read_body
from app.api.client import ClientWatch
from app.api.cors import CrossOrigin
from app.api.endpoints import Endpoints, Handler, Incoming
from app.api.forwarded import TrustedProxies
from app.api.replies import Reply, error_reply
from app.errors import GatewayError, InternalError
from app.observe import tracing
from app.observe.logs import log_record
from app.observe.record import RequestRecord, open_record
from app.service.gateway import Gateway

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = b"x-request-id"
CACHE_HEADER = b"x-gateway-cache"
_MAX_ID_LENGTH = 128
_MAX_AGENT_LENGTH = 256


class Front:
    """The ASGI app the server runs. `lifespan` serves the lifespan protocol."""

    def __init__(self, gateway: Gateway, endpoints: Endpoints, lifespan: ASGIApp) -> None:
        self.gateway = gateway
        self.endpoints = endpoints
        self.lifespan = lifespan
        server = gateway.config.server
        self.bodies = BodyBuffers(server.body_buffers_bytes)
        self._keepalive_s = server.stream_keepalive_s
        self._cors = CrossOrigin(server.cors)
        self._proxies = TrustedProxies(server.trusted_proxies) if server.trusted_proxies else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.lifespan(scope, receive, send)
            return
        sent_id, agent, forwarded_for, origin = _read_headers(scope["headers"])
        request_id = sent_id or uuid.uuid4().hex
        record = open_record(RequestRecord(request_id, scope["method"], scope["path"]))
        peer = (scope.get("client") or ("",))[0]
        proxies = self._proxies
        record.peer = peer if proxies is None else proxies.client(peer, forwarded_for)
        record.user_agent = agent
        trace = tracing.request(scope)
        allowed = self._cors.allowed(origin) if origin is not None else None
        client = ClientWatch(receive, self._keepalive_s)
        incoming: Incoming | None = None
        try:
            if allowed is not None and scope["method"] == "OPTIONS" and _preflight(scope):
                reply = self._preflight(scope, record)
            else:
                handler, incoming = await self._incoming(scope, receive, record, client)
                with client.closing():
                    reply = await handler(incoming)
        except GatewayError as exc:
            reply = self._failed(record, exc)
        except Exception:
            logger.exception("unexpected error on %s %s", record.method, record.route)
            reply = self._failed(record, InternalError("the gateway hit an unexpected error"))
        reply.raw_headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
        if record.cache is not None:
            reply.raw_headers.append((CACHE_HEADER, record.cache.encode("ascii")))
        if allowed is not None:
            reply.raw_headers.extend(self._cors.reply_headers(allowed))
        if incoming is None and _expects_continue(scope):
            # Refused before its body was asked for: the client sends no body, and the
            # connection can't be told apart from one that would have sent it, so it ends here.
            reply.raw_headers.append((b"connection", b"close"))
        record.status = record.status or reply.status_code
        # The answer is ready: a client leaving now has nothing left to cancel (a stream
        # starts the watch again for itself, to pace its keepalives).
        client.stop()
        try:
            await reply(scope, receive, send)
        finally:
            client.stop()
            self._close(record)
            if trace is not None:
                trace.end(record)
            if incoming is not None and isinstance(incoming.body, bytearray):
                self.bodies.give_back(incoming.body)

    async def _incoming(
        self, scope: Scope, receive: Receive, record: RequestRecord, client: ClientWatch
    ) -> tuple[Handler, Incoming]:
        """The endpoint's handler, and the request as it takes it: its key known, its body
        read."""
        found = self.endpoints.find(scope["path"])
        if found:
            record.route = found[0].endpoint.path
        match = self.endpoints.pick(scope["method"], scope["path"], found)
        endpoint = match.endpoint
        record.api = endpoint.api
        if endpoint.api is not None:
            metrics = self.gateway.metrics
            metrics.child(metrics.in_flight, endpoint.api).inc()
        gateway = self.gateway
        key = gateway.authenticate(Headers(scope=scope)) if endpoint.needs_key else None
        if key is not None:
            record.key = record.client = key.label
        else:
            record.client = record.peer
        body: bytes | bytearray = b""
        if endpoint.reads_body:
            limit = gateway.config.server.max_request_bytes
            body = await read_body(scope, receive, limit, self.bodies)
            client.start()
        incoming = Incoming(gateway, scope, receive, record, key, body, match.params, client)
        return endpoint.handler, incoming

    def _preflight(self, scope: Scope, record: RequestRecord) -> Reply:
        found = self.endpoints.find(scope["path"])
        if found:
            record.route = found[0].endpoint.path
        requested = Headers(scope=scope).get("access-control-request-headers")
        return self._cors.preflight(requested.encode("latin-1") if requested else None)

    @staticmethod
    def _failed(record: RequestRecord, error: GatewayError) -> Reply:
        record.failed(error.status_code, error.code, error.provider)
        return error_reply(error)

    def _close(self, record: RequestRecord) -> None:
        record.ended = time.perf_counter()
        metrics = self.gateway.metrics
        if record.api is not None:
            metrics.child(metrics.in_flight, record.api).dec()
        # The access line first: whatever the counting makes of the record, the line is there.
        log_record(record)
        try:
            metrics.observe(record)
        except Exception:
            logger.exception("could not count request %s in the metrics", record.request_id)


def _expects_continue(scope: Scope) -> bool:
    return any(
        name == b"expect" and value.lower() == b"100-continue" for name, value in scope["headers"]
    )


def _preflight(scope: Scope) -> bool:
    return any(name == b"access-control-request-method" for name, _ in scope["headers"])


def _read_headers(
    headers: list[tuple[bytes, bytes]],
) -> tuple[str | None, str, bytes | None, bytes | None]:
    """In one pass: the client's request id (if usable), its user agent, `X-Forwarded-For`
    and `Origin`."""
    request_id = forwarded_for = origin = None
    agent = ""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            text: str = value.decode("latin-1").strip()
            if 0 < len(text) <= _MAX_ID_LENGTH and text.isprintable():
                request_id = text
        elif name == b"user-agent":
            agent = value[:_MAX_AGENT_LENGTH].decode("latin-1")
        elif name == b"x-forwarded-for":
            forwarded_for = value if forwarded_for is None else forwarded_for + b"," + value
        elif name == b"origin":
            origin = value
    return request_id, agent, forwarded_for, origin
