"""Per-request clocks: total time and the part spent waiting on upstreams."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestTimings:
    started: float = field(default_factory=time.perf_counter)
    upstream_s: float = 0.0

    def overhead_ms(self) -> float:
        """Time the gateway itself spent so far: everything but waiting on upstreams."""
        return max(0.0, (time.perf_counter() - self.started - self.upstream_s) * 1000)


_current: ContextVar[RequestTimings | None] = ContextVar("request_timings", default=None)


def start_request() -> RequestTimings:
    timings = RequestTimings()
    _current.set(timings)
    return timings


@contextmanager
def upstream_wait() -> Iterator[None]:
    """Count the enclosed time as upstream time for the current request."""
    began = time.perf_counter()
    try:
        yield
    finally:
        timings = _current.get()
        if timings is not None:
            timings.upstream_s += time.perf_counter() - began


def current_timings() -> RequestTimings:
    """The running request's timings (a fresh clock if none was started)."""
    timings = _current.get()
    return timings if timings is not None else start_request()
