"""Servers for the fake upstreams: uvicorn on 127.0.0.1, a port the OS picks, in a thread. (The
gateway itself runs as `python -m app`: see `tests/processes.py`.)"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol, TypeVar, cast

import uvicorn
from starlette.types import ASGIApp

STARTUP_TIMEOUT_S = 10.0


def bind_loopback() -> socket.socket:
    """A TCP socket bound to a free port on 127.0.0.1 (not yet listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()
    return f"http://{host}:{port}"


class LiveServer:
    """One ASGI app served by uvicorn in a background thread until `stop()`."""

    def __init__(self, app: ASGIApp) -> None:
        self._sock = bind_loopback()
        self.url = url_of(self._sock)
        config = uvicorn.Config(
            app,
            lifespan="on",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            daemon=True,
            name=f"uvicorn {self.url}",
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server for {self.url} stopped during startup")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server for {self.url} did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(STARTUP_TIMEOUT_S)
        self._sock.close()


@contextmanager
def serve_in_thread(app: ASGIApp) -> Iterator[str]:
    """Serve `app` for the duration of the block; yields its base URL."""
    server = LiveServer(app)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


class Servable(Protocol):
    """A fake upstream: an ASGI app, and the URL it is served at once it is."""

    @property
    def app(self) -> ASGIApp: ...

    url: str


ServableT = TypeVar("ServableT", bound=Servable)


@contextmanager
def serving(fake: ServableT) -> Iterator[ServableT]:
    """Serve a fake upstream's `app` for the block, with its `url` set."""
    with serve_in_thread(fake.app) as url:
        fake.url = url
        yield fake


class Resettable(Servable, Protocol):
    """A fake upstream that can forget its script and what it recorded."""

    def reset(self) -> None: ...


ResettableT = TypeVar("ResettableT", bound=Resettable)


class ServedFakes:
    """Fake upstreams served until `stack` closes, one per kind and arguments, each from its
    first use on: the tests of a session share them, resetting them as they start."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._served: dict[tuple[Callable[..., Any], tuple[Hashable, ...]], Any] = {}

    def get(self, kind: Callable[..., ResettableT], *args: Hashable) -> ResettableT:
        """The fake `kind(*args)`, served; for fixtures that outlive one test."""
        key = (kind, args)
        if key not in self._served:
            self._served[key] = self._stack.enter_context(serving(kind(*args)))
        return cast(ResettableT, self._served[key])

    def fresh(self, kind: Callable[..., ResettableT], *args: Hashable) -> ResettableT:
        """The fake `kind(*args)`, served, with no script and nothing recorded."""
        fake = self.get(kind, *args)
        fake.reset()
        return fake


@contextmanager
def refused_port() -> Iterator[str]:
    """A base URL whose port is bound but never listens, so every connection is refused."""
    sock = bind_loopback()
    try:
        yield url_of(sock)
    finally:
        sock.close()
