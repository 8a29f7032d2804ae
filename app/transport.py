"""The upstream transport: httpx requests and responses, carried by aiohttp's connection pool.

Providers build `httpx.Request`s and read `httpx.Response`s (the seam httpx was designed
around); this transport moves their bytes. aiohttp's pool keeps a free-list of connections,
so a request costs the same with 4 or 2,000 pooled connections, where httpcore's scans every
pooled connection on each request. No cookies, redirects or auth flows happen here: each
upstream request is exactly what its provider built.
"""

from __future__ import annotations

import asyncio
import functools
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence

import aiohttp
import aiohttp.abc
import aiohttp.payload
import httpx
import yarl

from app.observe import tracing

DEFAULT_TIMEOUT_S = 120.0
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"host"})
# Upstream bodies are relayed as they come: never ask for them compressed.
_OWN_DEFAULTS = (
    (b"accept", "accept", "*/*"),
    (b"accept-encoding", "accept-encoding", "identity"),
    (b"user-agent", "user-agent", "vision-gateway"),
)
_NO_CONTENT_TYPE = ("Content-Type",)
# A large buffer is handed to the socket this much at a time: the event loop's write buffer
# never holds more than about this of it, and never a copy of the rest.
WRITE_WINDOW = 256 * 1024
# A compressed reply is unpacked this much at a time, and lets other tasks run after each
# `UNPACK_SLICE` of it.
UNPACK_WINDOW = 64 * 1024
UNPACK_SLICE = 1024 * 1024
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS  # either header, told apart by zlib
_UNPACKED = frozenset({b"gzip", b"x-gzip", b"deflate"})
_PACKED_BODY_HEADERS = frozenset({b"content-encoding", b"content-length"})


class BodyParts(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A request body made of several buffers (slices of other buffers, say), sent one after
    another and never joined. Its `Content-Length` is known: `size`."""

    def __init__(self, parts: list[bytes | memoryview]) -> None:
        self.parts = parts
        self.size = sum(len(part) for part in parts)

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            yield bytes(part)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield bytes(part)


class _PartsPayload(aiohttp.payload.Payload):
    """`BodyParts` as aiohttp writes a body: each buffer a window at a time, waiting for the
    socket to take the previous window before handing it the next."""

    def __init__(self, body: BodyParts) -> None:
        super().__init__(body)
        self._body = body

    @property
    def size(self) -> int:
        return self._body.size

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return b"".join(self._body.parts).decode(encoding, errors)

    async def write(self, writer: aiohttp.abc.AbstractStreamWriter) -> None:
        for part in self._body.parts:
            view = memoryview(part)
            for at in range(0, len(view), WRITE_WINDOW):
                await writer.write(view[at : at + WRITE_WINDOW])


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    """httpx's per-request timeouts (`connect`, `read`, `write`, `pool`) in aiohttp's terms."""
    timeout = request.extensions.get("timeout", {})
    return _client_timeout(
        timeout.get("connect", DEFAULT_TIMEOUT_S),
        timeout.get("pool", DEFAULT_TIMEOUT_S),
        timeout.get("read", DEFAULT_TIMEOUT_S),
    )


@functools.lru_cache(maxsize=256)
def _client_timeout(
    connect: float | None, pool: float | None, read: float | None
) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None,
        connect=None if connect is None or pool is None else connect + pool,
        sock_connect=connect,
        sock_read=read,
    )


@functools.lru_cache(maxsize=1024)
def _parsed(url: str) -> yarl.URL:
    """Upstream addresses repeat: each is parsed once, not on every request."""
    return yarl.URL(url, encoded=True)


def _mapped(exc: BaseException, *, connecting: bool) -> httpx.TransportError:
    """aiohttp's failure as the httpx exception the upstream seam maps."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(exc) or "connect timeout")
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(str(exc) or "read timeout")
    if isinstance(exc, aiohttp.ClientConnectorError) or (connecting and isinstance(exc, OSError)):
        return httpx.ConnectError(str(exc) or "connect error")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(str(exc) or "the connection closed mid-response")
    return httpx.ReadError(str(exc) or type(exc).__name__)


class _Unpacker:
    """A gzip or zlib body undone a window at a time: one small packet of a compression bomb
    never becomes hundreds of MB at once, and whoever counts the bytes (the reply and event
    caps) sees them a window at a time."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(_GZIP_OR_ZLIB)
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._fed = self._fed or bool(data)
        try:
            while data:
                piece = self._inflate.decompress(data, UNPACK_WINDOW)
                data = self._inflate.unconsumed_tail
                if piece:
                    yield piece
        except zlib.error:
            raise httpx.RemoteProtocolError("the compressed reply is malformed") from None

    def check_ended(self) -> None:
        if self._fed and not self._inflate.eof:  # an empty body (a 204, say) packs nothing
            raise httpx.RemoteProtocolError("the compressed reply ended early")


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, unpacker: _Unpacker | None) -> None:
        self._response = response
        self._unpacker = unpacker

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if self._unpacker is None:
                async for chunk in self._response.content.iter_any():
                    yield chunk
                return
            unpacked = 0
            async for chunk in self._response.content.iter_any():
                for piece in self._unpacker.feed(chunk):
                    yield piece
                    unpacked += len(piece)
                    if unpacked >= UNPACK_SLICE:  # let the rest of the loop run meanwhile
                        unpacked = 0
                        await asyncio.sleep(0)
            self._unpacker.check_ended()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _mapped(exc, connecting=False) from exc

    async def aclose(self) -> None:
        # A body read to its end hands the connection back to the pool; one abandoned
        # mid-way (a client that went away) closes it, which stops the upstream.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


def _unpacked(
    response: aiohttp.ClientResponse,
) -> tuple[Sequence[tuple[bytes, bytes]], _Unpacker | None]:
    """The reply's headers as its body will be read, and what undoes its compression.

    The gateway asks for uncompressed replies; one compressed anyway with gzip or zlib is
    unpacked here a window at a time (and loses the headers that described the packed
    body). Any other coding is refused: nothing here can unpack it safely."""
    raw = response.raw_headers
    if "Content-Encoding" not in response.headers:
        return raw, None
    codings = [v.strip().lower() for k, v in raw if k.lower() == b"content-encoding"]
    codings = [c for c in codings if c not in (b"", b"identity")]
    if not codings:
        return raw, None
    if codings[0] not in _UNPACKED or len(codings) > 1 or b"," in codings[0]:
        response.close()
        named = b", ".join(codings).decode("latin-1")
        raise httpx.RemoteProtocolError(f"the reply is encoded with {named[:40]!r}")
    kept = [(k, v) for k, v in raw if k.lower() not in _PACKED_BODY_HEADERS]
    return kept, _Unpacker()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One shared, pooled set of upstream connections for the whole app."""

    def __init__(self, *, max_connections: int = 0, keepalive_s: float = 30.0) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop it belongs to.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive_s,
                ttl_dns_cache=60,
                enable_cleanup_closed=True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body: bytes | _PartsPayload
        if isinstance(request.stream, BodyParts):
            body = _PartsPayload(request.stream)
        else:
            body = await request.aread()  # multipart bodies are built by httpx and sent whole
        raw = request.headers.raw
        names = {name.lower() for name, _ in raw}
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in raw
            if name.lower() not in _HOP_BY_HOP
        ]
        # aiohttp adds its own User-Agent, Accept and Accept-Encoding (and a Content-Type for
        # a body) unless told otherwise; naming them here keeps its quick path.
        headers += [(name, value) for key, name, value in _OWN_DEFAULTS if key not in names]
        headers.extend(tracing.propagation())  # the span this request belongs to, if traced
        skip = _NO_CONTENT_TYPE if body and b"content-type" not in names else None
        try:
            response = await self._session_now().request(
                request.method,
                _parsed(str(request.url)),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=_timeout(request),
                skip_auto_headers=skip,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _mapped(exc, connecting=True) from exc
        kept, unpacker = _unpacked(response)
        return httpx.Response(
            response.status,
            headers=kept,
            stream=_ResponseStream(response, unpacker),
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
