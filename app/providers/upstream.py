"""The upstream seam: transport failures and HTTP statuses become gateway errors here."""

from __future__ import annotations

import email.utils
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import orjson

from app.config import DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_REPLY_BYTES, ModelEntry
from app.errors import (
    GatewayError,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.observe.record import upstream_wait
from app.observe.redaction import redact
from app.transport import BodyParts
from app.wire.inline import InlineImages, encode_json
from app.wire.sse import MAX_EVENT_BYTES

logger = logging.getLogger(__name__)

USER_AGENT = "vision-gateway"
MAX_RETRY_AFTER_S = 24 * 3600
# Methods whose requests say `Content-Length: 0` when they carry nothing.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Distinct header sets kept normalised per upstream (providers use a handful).
_MAX_HEADER_SETS = 32


@contextmanager
def map_upstream_errors(provider: str) -> Iterator[None]:
    """Translate httpx failures, around a request and around the reading of its body."""
    try:
        yield
    except GatewayError:
        raise
    except httpx.TimeoutException:
        raise UpstreamTimeout(f"the {provider} upstream did not answer in time") from None
    except (httpx.ConnectError, httpx.ConnectTimeout):
        raise UpstreamUnavailable(f"the {provider} upstream could not be reached") from None
    except httpx.TransportError as exc:
        logger.warning("%s upstream transport error: %s", provider, type(exc).__name__)
        raise UpstreamError(f"the {provider} upstream connection failed") from None


def upstream_message(body: bytes) -> str:
    """The human message in an upstream error body, whatever shape the vendor uses."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "message", "detail"):
            if parsed.get(key):
                value = parsed[key]
                return value if isinstance(value, str) else orjson.dumps(value).decode()
    return body.decode("utf-8", "replace").strip()


@dataclass(slots=True)
class UpstreamReply:
    """A reply read whole: its status, its headers and its body, decoded (`read_reply`). Not
    frozen: a frozen dataclass sets each field through `object.__setattr__`, 346 ns a reply
    where this takes 94 ns."""

    status_code: int
    headers: httpx.Headers
    content: bytes


def raise_for_status(response: UpstreamReply, provider: str, secrets: tuple[str, ...]) -> None:
    """Map a non-2xx upstream reply to the gateway's error for it."""
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = redact(upstream_message(response.content), secrets) or f"HTTP {status}"
    # What an upstream says may quote the prompt: the body is for debugging only.
    logger.info("%s upstream answered %d", provider, status)
    logger.debug("%s upstream answered %d: %s", provider, status, detail)
    if status in (401, 403):
        raise UpstreamAuthFailed(
            f"the {provider} upstream refused the gateway's credentials ({status})"
        )
    if status == 429:
        retry_after = retry_after_s(response.headers.get("retry-after", ""))
        raise UpstreamRateLimited(
            f"the {provider} upstream is rate limiting: {detail}",
            headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
        )
    if status == 408:
        raise UpstreamTimeout(f"the {provider} upstream timed out: {detail}")
    if 400 <= status < 500:
        raise UpstreamRejected(f"the {provider} upstream rejected the request: {detail}")
    raise UpstreamError(f"the {provider} upstream failed ({status}): {detail}")


def retry_after_s(value: str) -> int | None:
    """An upstream's `Retry-After` as whole seconds from now, at most a day: a number of
    seconds (a fraction rounded up), or a date. None for anything else (`nan`, `-1`, `inf`),
    which is neither waited for nor passed on."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value)
    if not 0 <= seconds < math.inf:  # NaN is neither
        return None
    return min(math.ceil(seconds), MAX_RETRY_AFTER_S)


def _seconds_until(date: str) -> float:
    try:
        when = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return math.nan
    if when.tzinfo is None:
        return math.nan
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


class UpstreamAPI:
    """Calls to one upstream, with its credentials, deadline and error mapping.

    Requests go straight to the shared transport: no client-side cookies, redirects or auth
    flows, which a gateway serving many callers must not carry from one request to the next.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        name: str,
        base_url: str,
        api_key: str,
        timeout_s: float,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.transport = transport
        self.name = name
        self.base_url = base_url
        self.headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.secrets = (api_key,) if api_key else ()
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        self._extensions = {"timeout": timeout.as_dict()}
        self.max_reply_bytes = max_reply_bytes
        self.max_event_bytes = max_event_bytes
        self._header_sets: dict[tuple[bool, tuple[tuple[str, str], ...]], httpx.Headers] = {}

    @classmethod
    def for_entry(
        cls,
        entry: ModelEntry,
        transport: httpx.AsyncBaseTransport,
        *,
        name: str,
        default_base_url: str,
    ) -> UpstreamAPI:
        """The upstream a model entry names, with the provider's default address."""
        return cls(
            transport,
            name=name,
            base_url=entry.base_url or default_base_url,
            api_key=entry.api_key,
            timeout_s=entry.timeout_s,
            max_reply_bytes=entry.max_reply_bytes,
            max_event_bytes=entry.max_event_bytes,
        )

    def url(self, path: str) -> httpx.URL:
        return httpx.URL(f"{self.base_url}{path}")

    def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: bytes | BodyParts | None = None,
        files: dict[str, tuple[str | None, bytes, str]] | None = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
    ) -> httpx.Request:
        """A request to this upstream; `authenticated=False` leaves the API key out (for
        presigned storage URLs, which carry their own authorisation)."""
        if files is not None:  # multipart: httpx builds the body and its headers
            base = self.headers if authenticated else {"User-Agent": USER_AGENT}
            return httpx.Request(
                method,
                url,
                files=files,
                headers={**base, **(headers or {})},
                extensions=self._extensions,
            )
        sized = httpx.Headers(self._fixed_headers(authenticated, headers))
        if isinstance(content, BodyParts):  # sent as it is, in pieces
            sized["Content-Length"] = str(content.size)
            return httpx.Request(
                method, url, stream=content, headers=sized, extensions=self._extensions
            )
        if content is not None or method in _BODY_METHODS:
            sized["Content-Length"] = str(len(content or b""))
        request = httpx.Request(
            method,
            url,
            stream=httpx.ByteStream(content or b""),
            headers=sized,
            extensions=self._extensions,
        )
        request.read()  # `content` is the body itself: readable, and never copied
        return request

    def _fixed_headers(self, authenticated: bool, extra: dict[str, str] | None) -> httpx.Headers:
        """The headers every request of one kind carries, checked and normalised once (the
        kinds are a provider's few fixed sets; a request adds only its length)."""
        key = (authenticated, tuple(extra.items()) if extra else ())
        found = self._header_sets.get(key)
        if found is None:
            base = self.headers if authenticated else {"User-Agent": USER_AGENT}
            found = httpx.Headers({**base, **extra} if extra else base)
            if len(self._header_sets) < _MAX_HEADER_SETS:
                self._header_sets[key] = found
        return found

    async def send(self, request: httpx.Request) -> UpstreamReply:
        """Send and read a request; non-2xx statuses raise the gateway's errors."""
        with map_upstream_errors(self.name), upstream_wait():
            response = await self.transport.handle_async_request(request)
            try:
                reply = await read_reply(response, self.max_reply_bytes, self.name)
            finally:
                await response.aclose()
        raise_for_status(reply, self.name, self.secrets)
        return reply

    async def open_stream(self, request: httpx.Request) -> httpx.Response:
        """Send a request for a server-sent event stream; the caller closes the response. A
        non-2xx status or another content type is raised here, so only a stream comes back."""
        with map_upstream_errors(self.name):
            response = await self.transport.handle_async_request(request)
        if not response.is_success:
            try:
                with map_upstream_errors(self.name):
                    reply = await read_reply(response, self.max_reply_bytes, self.name)
            finally:
                await response.aclose()
            raise_for_status(reply, self.name, self.secrets)
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            await response.aclose()
            raise UpstreamError(f"the {self.name} upstream did not answer with an event stream")
        response.extensions[MAX_EVENT_BYTES] = self.max_event_bytes  # read by `iter_sse_data`
        return response

    async def call(
        self, method: str, path: str, payload: object = None, inline: InlineImages | None = None
    ) -> dict[str, object]:
        """A JSON request to `base_url + path` and its JSON object reply; `inline` holds the
        data URIs whose stand-ins `payload` may carry."""
        request = self.request(
            method,
            self.url(path),
            content=None if payload is None else encode_json(payload, inline),
            headers={"Content-Type": "application/json"} if payload is not None else None,
        )
        return json_object(await self.send(request), self.name)


class MalformedReply(UpstreamError):
    """A 2xx reply that is not what the upstream's API answers: not JSON, not an object, or
    without what the gateway needs from it (502 `upstream_failed`)."""


async def read_reply(response: httpx.Response, limit: int, provider: str) -> UpstreamReply:
    """Read a reply's body, refused as soon as it is over `limit` bytes: counted as decoded,
    so a compressed reply is stopped as it unpacks."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UpstreamError(f"the {provider} upstream sent a reply over {limit} bytes")
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            logger.warning("%s upstream reply over %d bytes: cut", provider, limit)
            raise UpstreamError(f"the {provider} upstream sent a reply over {limit} bytes")
        chunks.append(chunk)
    return UpstreamReply(response.status_code, response.headers, b"".join(chunks))


def json_object(response: UpstreamReply, provider: str) -> dict[str, object]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise MalformedReply(f"the {provider} upstream sent a malformed reply")
    return body
