"""CORS for the origins `server.cors` lists: their browser pages may call every endpoint.

A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed
origin is answered here, before any key is asked for: browsers send it without one. The
answer allows the gateway's methods and the headers the page asked for by name, since a `*`
would not cover `Authorization`. Replies to an allowed origin say so and expose the
gateway's own headers; other origins get no CORS header at all, and the browser keeps the
reply from the page."""

from __future__ import annotations

import re

from starlette.responses import Response

METHODS = b"GET, HEAD, POST, DELETE"
EXPOSED = b"x-request-id, x-gateway-overhead-ms, x-gateway-cache, retry-after"
MAX_AGE_S = b"600"
# What `Access-Control-Request-Headers` may hold: header names, comma-separated.
_TOKEN = rb"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_HEADER_LIST = re.compile(_TOKEN + rb"(?:[ \t]*,[ \t]*" + _TOKEN + rb")*")
_MAX_HEADER_LIST = 2048


class CrossOrigin:
    """The origins allowed to call the gateway from a browser, and what they are told."""

    def __init__(self, origins: list[str]) -> None:
        self._any = "*" in origins
        self._origins = frozenset(origin.encode("latin-1") for origin in origins)

    def allowed(self, origin: bytes) -> bytes | None:
        """What `Access-Control-Allow-Origin` says to `origin`, or None if it is not allowed."""
        if self._any:
            return b"*"
        return origin if origin in self._origins else None

    def reply_headers(self, allowed: bytes) -> list[tuple[bytes, bytes]]:
        """The headers of a reply to an allowed origin's request."""
        headers = [
            (b"access-control-allow-origin", allowed),
            (b"access-control-expose-headers", EXPOSED),
        ]
        if allowed != b"*":  # the reply differs by origin: caches must keep them apart
            headers.append((b"vary", b"origin"))
        return headers

    @staticmethod
    def preflight(requested_headers: bytes | None) -> Response:
        """The answer to an allowed origin's preflight (`reply_headers` are added to it, as
        to any reply), whatever the path: a request to a path that does not exist then gets
        its 404, which the page can read."""
        reply = Response(status_code=204)
        reply.raw_headers += [
            (b"access-control-allow-methods", METHODS),
            (b"access-control-max-age", MAX_AGE_S),
        ]
        wanted = (requested_headers or b"").strip()
        if wanted and len(wanted) <= _MAX_HEADER_LIST and _HEADER_LIST.fullmatch(wanted):
            reply.raw_headers.append((b"access-control-allow-headers", wanted.lower()))
        return reply
