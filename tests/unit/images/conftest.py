"""Image-test fixtures: a loopback-only guard on every socket and name lookup, a table-driven
resolver, fetchers that are always closed, and a scripted local HTTP server."""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpcore
import pytest

from app.images.fetch import ImageFetcher
from tests.unit.images.local_server import LocalServer


class ForeignConnection(AssertionError):
    """A test tried to reach something other than loopback."""


def is_loopback(host: object) -> bool:
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every address the fetcher's sockets tried to connect to. Anything off loopback fails the
    test before a packet leaves, and so does any name lookup through the system resolver."""
    attempts: list[str] = []
    connect = httpcore.AnyIOBackend.connect_tcp
    lookup = socket.getaddrinfo

    async def loopback_connect(
        self: httpcore.AnyIOBackend, host: str, port: int, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        attempts.append(host)
        if not is_loopback(host):
            raise ForeignConnection(f"connection attempted to {host}:{port}")
        return await connect(self, host, port, **kwargs)

    def loopback_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not is_loopback(host):
            raise ForeignConnection(f"name lookup attempted for {host!r}")
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", loopback_connect)
    monkeypatch.setattr(socket, "getaddrinfo", loopback_lookup)
    yield attempts
    assert all(is_loopback(host) for host in attempts), attempts


class TableResolver:
    """Answers names from a fixed table (unknown names fail like NXDOMAIN) and records queries."""

    def __init__(self, answers: Mapping[str, list[str]] | None = None) -> None:
        self.answers = dict(answers or {})
        self.queries: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:  # noqa: ARG002
        self.queries.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.answers[host])


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """Loading CA certificates is slow; every fetcher in the tests can share one context."""
    return ssl.create_default_context()


class Fetchers:
    """Builds fetchers that resolve only through a `TableResolver`, and closes them all."""

    def __init__(self) -> None:
        self._open: list[ImageFetcher] = []

    def make(
        self,
        *,
        allow_private: bool = False,
        resolver: TableResolver | None = None,
        timeout_s: float = 5.0,
        max_bytes: int = 1_000_000,
        per_client: int = 8,
    ) -> ImageFetcher:
        fetcher = ImageFetcher(
            timeout_s=timeout_s,
            max_bytes=max_bytes,
            allow_private_networks=allow_private,
            resolver=resolver or TableResolver(),
            ssl_context=shared_ssl_context(),
            per_client=per_client,
        )
        self._open.append(fetcher)
        return fetcher

    async def aclose(self) -> None:
        for fetcher in self._open:
            await fetcher.aclose()


@pytest.fixture
async def fetchers() -> AsyncIterator[Fetchers]:
    made = Fetchers()
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    local = LocalServer()
    await local.start()
    try:
        yield local
    finally:
        await local.stop()
