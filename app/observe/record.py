"""One record per request: opened by the front layer, filled in on the way, closed when the
response body ends. The access log line and the request metrics are both read from it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal[
    "completed", "client_disconnected", "upstream_failed", "timeout", "rejected", "error"
]
ANONYMOUS = "anonymous"
# The most credits one request may say it cost; an upstream's figure past it is not counted.
MAX_CREDITS = 1e9
UNKNOWN_MODEL = "unknown"
NO_PROVIDER = "none"
UNMATCHED = "unmatched"  # the route of a path no endpoint serves


def outcome_of(status: int) -> Outcome:
    """How a request that ended with `status` went, in the words operators filter by."""
    if status < 400:
        return "completed"
    if status == 499:
        return "client_disconnected"
    if status == 504:
        return "timeout"
    if status == 500:
        return "error"
    if status > 500:
        return "upstream_failed"
    return "rejected"


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    credits: float | None = None  # what a job upstream says the request cost


@dataclass
class RequestRecord:
    """What the gateway knows about the request it is serving."""

    request_id: str = ""
    method: str = ""
    path: str = ""
    route: str = UNMATCHED  # the endpoint's path pattern, never the raw path
    started: float = field(default_factory=time.perf_counter)
    # Set by model endpoints (chat, responses); requests without a model leave them empty.
    api: str | None = None
    model: str = ""  # as the client sent it (logs only)
    model_label: str = UNKNOWN_MODEL  # a configured name or pattern: bounded
    provider: str = NO_PROVIDER
    key: str = ANONYMOUS  # the gateway key's name, never the key
    client: str = ""  # whose share of the image fetches: the key's name, or the address
    peer: str = ""  # the client's address (a trusted proxy's X-Forwarded-For believed)
    user_agent: str = ""
    stream: bool = False
    status: int = 0
    error_code: str | None = None
    first_token_s: float | None = None
    usage: Usage | None = None
    # (bytes, sha256 prefix) of each image whose bytes passed through.
    images: list[tuple[int, str]] = field(default_factory=list)
    image_count: int = 0
    document_pages: int = 0  # pages of documents sent as images (`image_count` has them too)
    fetched_bytes: int = 0  # of image and document URLs, held until the request ends
    render_s: float = 0.0  # time spent rendering documents
    cache: str | None = None  # how the response cache served it: hit, miss, bypass
    ended: float | None = None
    _upstream_s: float = 0.0
    _waiting: int = 0
    _wait_began: float = 0.0
    _overhead_sent: float | None = None

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.status)

    def failed(self, status: int, code: str | None, provider: str | None = None) -> None:
        """The request ended in an error, before or after its first byte."""
        self.status, self.error_code = status, code
        self.provider = provider or self.provider

    def first_token(self) -> None:
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.started

    def count_usage(self, prompt_tokens: int, completion_tokens: int) -> None:
        usage = self.usage = self.usage or Usage()
        usage.prompt_tokens += max(prompt_tokens, 0)
        usage.completion_tokens += max(completion_tokens, 0)

    def count_credits(self, credits: object) -> None:
        """Add what a job upstream says the request cost: a number from 0 to `MAX_CREDITS`
        (anything else is no figure worth counting)."""
        if isinstance(credits, bool) or not isinstance(credits, int | float):
            return
        if 0 <= credits <= MAX_CREDITS:  # NaN is not
            usage = self.usage = self.usage or Usage()
            usage.credits = (usage.credits or 0.0) + float(credits)

    def duration_s(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def elapsed_ms(self) -> float:
        return self.duration_s() * 1000

    def overhead_header(self) -> str:
        """`x-gateway-overhead-ms` for a reply about to be sent: the figure from now on, so
        that the log line and `gateway_overhead_seconds` say what the client was told."""
        self._overhead_sent = self.overhead_ms()
        return f"{self._overhead_sent:.3f}"

    def overhead_ms(self) -> float:
        """Time the gateway itself spent so far: everything but waiting on upstreams (or
        what `overhead_header` sent)."""
        if self._overhead_sent is not None:
            return self._overhead_sent
        waiting = self._upstream_s
        if self._waiting:
            waiting += time.perf_counter() - self._wait_began
        return max(0.0, (self.duration_s() - waiting) * 1000)

    def _wait_started(self) -> None:
        # Parallel upstream calls (`n` fanned out) overlap: their union is upstream time.
        if self._waiting == 0:
            self._wait_began = time.perf_counter()
        self._waiting += 1

    def _wait_ended(self) -> None:
        self._waiting -= 1
        if self._waiting == 0:
            self._upstream_s += time.perf_counter() - self._wait_began


_current: ContextVar[RequestRecord | None] = ContextVar("request_record", default=None)


def open_record(record: RequestRecord) -> RequestRecord:
    _current.set(record)
    return record


def current_record() -> RequestRecord:
    """The running request's record (a fresh, unregistered one outside any request)."""
    record = _current.get()
    return record if record is not None else RequestRecord()


def current_request_id() -> str:
    record = _current.get()
    return record.request_id if record is not None else ""


@contextmanager
def upstream_wait() -> Iterator[None]:
    """Count the enclosed time as upstream time for the current request."""
    record = _current.get()
    if record is None:
        yield
        return
    record._wait_started()
    try:
        yield
    finally:
        record._wait_ended()
