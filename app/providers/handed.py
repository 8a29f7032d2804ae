"""URLs an upstream hands back for the gateway to reach (a presigned upload URL), trusted no
more than a client's image URL.

A URL on the upstream's own origin (its configured `base_url`) is the operator's choice and
goes as it is. Any other must be on one of the provider's storage hosts and resolve, like a
client's image URL, to no loopback, private, link-local or metadata address
(`images.allow_private_networks` lifts the private ranges, never the metadata ones).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence

import httpx

from app.errors import UpstreamError
from app.images.addresses import is_metadata_name, parse_numeric_host, refusal_reason

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class UnusableURL(UpstreamError):
    """An upstream handed back a URL the gateway may not reach (502 `upstream_failed`)."""


class HandedURLs:
    """Checks the URLs one upstream hands back (see the module's docstring)."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        storage_hosts: Sequence[str],
        *,
        allow_private: bool,
        resolver: Resolver = _system_resolver,
    ) -> None:
        self._provider = provider
        self._origin = _origin(httpx.URL(base_url))
        self._hosts = [host.lower() for host in storage_hosts]
        self._allow_private = allow_private
        self._resolver = resolver

    async def check(self, url: str) -> httpx.URL:
        """`url`, parsed, once it may be reached; 502 `upstream_failed` otherwise, naming the
        host (never the query string of a presigned URL)."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise self._refused("a malformed URL") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise self._refused("a URL that is not http(s)")
        if _origin(parsed) == self._origin:
            return parsed
        host = parsed.host.lower().rstrip(".")
        if not self._listed(host):
            raise self._refused(f"a URL on {host!r}, which is not one of its storage hosts")
        reason = await self._address_problem(host, parsed.port or _default_port(parsed))
        if reason is not None:
            raise self._refused(f"a URL on {host!r}, which resolves to {reason}")
        return parsed

    def _listed(self, host: str) -> bool:
        for allowed in self._hosts:
            if allowed.startswith("*."):
                if host.endswith(allowed[1:]) and len(host) > len(allowed) - 1:
                    return True
            elif host == allowed:
                return True
        return False

    async def _address_problem(self, host: str, port: int) -> str | None:
        if is_metadata_name(host):
            return "a cloud metadata service"
        numeric = parse_numeric_host(host)
        if numeric is not None:
            addresses = [numeric]
        else:
            try:
                answers = await self._resolver(host, port)
            except (OSError, UnicodeError):
                return "no address"
            addresses = [a for answer in answers if (a := parse_numeric_host(answer))]
        if not addresses:
            return "no address"
        for address in addresses:
            reason = refusal_reason(address, allow_private=self._allow_private)
            if reason is not None:
                return reason
        return None

    def _refused(self, what: str) -> UnusableURL:
        return UnusableURL(f"the {self._provider} upstream handed back {what}")


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host.lower(), url.port or _default_port(url)


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80
