"""What the gateway knows about the request it is serving: its id, its clocks, its images."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestContext:
    request_id: str = ""
    client: str = ""  # who asks: a gateway key's label, or the caller's address without keys
    started: float = field(default_factory=time.perf_counter)
    upstream_s: float = 0.0
    # (bytes, sha256 prefix) of each image whose bytes passed through, for the request log.
    images: list[tuple[int, str]] = field(default_factory=list)

    def overhead_ms(self) -> float:
        """Time the gateway itself spent so far: everything but waiting on upstreams."""
        return max(0.0, (time.perf_counter() - self.started - self.upstream_s) * 1000)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


_current: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def start_request(request_id: str = "") -> RequestContext:
    context = RequestContext(request_id)
    _current.set(context)
    return context


def current_request() -> RequestContext:
    """The running request's context (a fresh one outside any request)."""
    context = _current.get()
    return context if context is not None else start_request()


@contextmanager
def upstream_wait() -> Iterator[None]:
    """Count the enclosed time as upstream time for the current request."""
    began = time.perf_counter()
    try:
        yield
    finally:
        context = _current.get()
        if context is not None:
            context.upstream_s += time.perf_counter() - began
