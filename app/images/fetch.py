"""The one fetcher for client image URLs: address checks at connect time, capped and timed bodies.

The check runs inside the connection pool's network backend, on the very address the socket
connects to, so a name that resolves to a private address is refused and a DNS answer cannot
change between the check and the connect. Redirects are followed by hand, each one checked.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

from app.errors import ImageError, ImageFetchFailed, ImageTooLarge, ImageURLForbidden
from app.errors.quoting import shortened
from app.images.addresses import IPAddress, is_metadata_name, parse_numeric_host, refusal_reason
from app.images.held import FetchedBytes
from app.images.shares import FetchShares
from app.images.urls import parse_image_url
from app.observe.record import RequestRecord, current_record
from app.server.threads import WorkerThreads

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = b"vision-gateway image fetcher"
# A larger body's pieces are joined on a worker thread: copying megabytes stalls the loop.
JOIN_ON_LOOP_BYTES = 1024 * 1024

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host`."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class AddressRefused(httpcore.ConnectError):
    """A connection to an address the gateway must not reach."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves names itself and connects only to allowed addresses."""

    def __init__(self, resolver: Resolver, *, allow_private: bool) -> None:
        self._resolver = resolver
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        numeric = parse_numeric_host(host)
        if numeric is not None:
            return [numeric]
        try:
            answers = await self._resolver(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve the host: {exc.strerror}") from None
        except UnicodeError:  # a name the resolver can't encode: no host to reach
            raise httpcore.ConnectError("cannot resolve the host") from None
        addresses = [address for a in answers if (address := parse_numeric_host(a)) is not None]
        if not addresses:
            raise httpcore.ConnectError("the host has no address")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if is_metadata_name(host):
            raise AddressRefused("the image host is a cloud metadata service")
        addresses = await self._addresses(host, port)
        for address in addresses:  # one bad answer refuses them all: no mixing to slip past
            reason = refusal_reason(address, allow_private=self._allow_private)
            if reason is not None:
                raise AddressRefused(f"the image host resolves to {reason}")
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = httpcore.ConnectError(str(exc))
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,  # noqa: ARG002
        timeout: float | None = None,  # noqa: ARG002, ASYNC109
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,  # noqa: ARG002
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("image URLs cannot reach unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def display_url(url: str | httpx.URL) -> str:
    """Scheme, host and path, cut short: never the query string or credentials (presigned
    URLs), nor kilobytes of a path."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else url
        shown_host = parsed.host  # decodes IDNA: an invalid name fails here
    except (httpx.InvalidURL, ValueError, TypeError):
        return _display_unparsable(str(url))
    host = f"[{shown_host}]" if ":" in shown_host else shown_host
    port = f":{parsed.port}" if parsed.port else ""
    return shortened(f"{parsed.scheme}://{host}{port}{parsed.path}")


def _display_unparsable(url: str) -> str:
    try:
        parts = urlsplit(url)
        return shortened(f"{parts.scheme}://{parts.hostname or ''}{parts.path}")
    except ValueError:
        return "the image URL"


# Whose fetch of which URL, under which byte limit, asking for which type.
FetchKey = tuple[str, str, int, bytes]


class ImageFetcher:
    """Fetches image URLs under the byte cap and the timeout: at most `per_client` at a time
    for one client (see `FetchShares`), and one per URL at a time for each client."""

    def __init__(
        self,
        *,
        timeout_s: float,
        max_bytes: int,
        allow_private_networks: bool,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
        per_client: int = 8,
        held: FetchedBytes | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._held = held or FetchedBytes(2**62, 2**62)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=max_connections,
            keepalive_expiry=15,
            network_backend=GuardedBackend(resolver, allow_private=allow_private_networks),
        )
        self._shares = FetchShares(per_client)
        self._in_flight: dict[FetchKey, asyncio.Task[bytes]] = {}
        self._waiting: dict[FetchKey, int] = {}
        self._joining = WorkerThreads(2)

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def fetch(
        self,
        url: str,
        param: str | None = None,
        *,
        max_bytes: int | None = None,
        accept: bytes = b"image/*",
    ) -> bytes:
        """The body of `url` (at most `max_bytes`, the image limit unless given), shared with
        the same client's concurrent fetches of it; the fetch stops once no request waits for
        it any more (clients that went away). Other clients fetch it on their own: a fetch
        queued in one client's share never keeps another client waiting."""
        limit = self._max_bytes if max_bytes is None else max_bytes
        record = current_record()
        key = (record.client, url, limit, accept)
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch_shared(url, record, limit, accept))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            return await asyncio.shield(task)
        except ImageError as exc:
            raise type(exc)(exc.message, param=param) from None
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                if not task.done():
                    task.cancel()
                    self._forget(key, task)

    def _forget(self, key: FetchKey, task: asyncio.Task[bytes]) -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]

    async def _fetch_shared(
        self, url: str, record: RequestRecord, limit: int, accept: bytes
    ) -> bytes:
        """One fetch, in the client's share of the pool, its bytes counted for the request
        that started it (others of the same client waiting for it share what it holds)."""
        async with self._shares.slot(record.client):
            return await self._fetch(url, limit, accept, record)

    async def _fetch(self, url: str, limit: int, accept: bytes, record: RequestRecord) -> bytes:
        shown = display_url(url)
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._follow(url, limit, accept, record)
        except TimeoutError:
            raise ImageFetchFailed(f"fetching {shown} took over {self._timeout_s:g} s") from None
        except AddressRefused as exc:
            raise ImageURLForbidden(f"{shown} is not allowed: {exc}") from None
        except httpcore.UnsupportedProtocol:
            raise ImageURLForbidden(f"{shown} is not an http(s) URL") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
            logger.info("image fetch of %s failed: %s", shown, type(exc).__name__)
            raise ImageFetchFailed(f"fetching {shown} failed: {_describe(exc)}") from None

    async def _follow(self, url: str, limit: int, accept: bytes, record: RequestRecord) -> bytes:
        target = parse_image_url(url, None)
        for _ in range(MAX_REDIRECTS + 1):
            async with self._pool.stream(
                "GET", str(target), headers=[(b"Accept", accept), (b"User-Agent", _USER_AGENT)]
            ) as response:
                if response.status in _REDIRECTS:
                    target = _redirect_target(target, _header(response, b"location"))
                    continue
                if response.status != 200:
                    raise ImageFetchFailed(f"{display_url(target)} answered HTTP {response.status}")
                return await self._read_capped(response, target, limit, record)
        raise ImageFetchFailed(f"more than {MAX_REDIRECTS} redirects")

    async def _read_capped(
        self, response: httpcore.Response, url: httpx.URL, limit: int, record: RequestRecord
    ) -> bytes:
        declared = _header(response, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            raise ImageTooLarge(f"{display_url(url)} is over {limit} bytes")
        if declared.isdigit() and int(declared) > self._held.room(record):
            self._held.take(record, int(declared))  # refused before a byte is read
        pieces: list[bytes] = []
        size = 0
        async for chunk in response.aiter_stream():
            self._held.take(record, len(chunk))
            pieces.append(chunk)
            size += len(chunk)
            if size > limit:
                raise ImageTooLarge(f"{display_url(url)} is over {limit} bytes")
        if size > JOIN_ON_LOOP_BYTES:
            return await self._joining.run(lambda: b"".join(pieces))
        return b"".join(pieces)


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    """Where a redirect leads, checked like the first URL (its address is checked on connect)."""
    if not location:
        raise ImageFetchFailed(f"{display_url(current)} redirected nowhere")
    try:
        target = current.join(location)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise ImageFetchFailed(f"{display_url(current)} redirected to a malformed URL") from None
    return parse_image_url(str(target), None)


def _header(response: httpcore.Response, name: bytes) -> str:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return ""


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpcore.TimeoutException):
        return "timed out"
    if isinstance(exc, httpcore.ConnectError):
        return "could not connect"
    return "the connection failed"
