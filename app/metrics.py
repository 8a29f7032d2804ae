"""Prometheus metrics, one registry per app so that several apps can live in one process."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Set (by `python -m app --workers N`) before any worker imports prometheus_client: every
# worker then writes its values to files there, and a scrape sums them.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_requests",
            "Chat completion requests by outcome.",
            ["model", "provider", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Total time of a chat completion request.",
            ["model", "provider", "stream"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.first_token = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time until a stream's first content.",
            ["model", "provider"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "Time the gateway itself spent on a non-streamed request.",
            ["model", "provider"],
            buckets=_OVERHEAD_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "gateway_in_flight_requests",
            "Chat completion requests being served.",
            ["stream"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.streams = Gauge(
            "gateway_open_streams",
            "Streamed responses being sent.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors",
            "Upstream failures by provider and error code.",
            ["provider", "code"],
            registry=self.registry,
        )
        self.retries = Counter(
            "gateway_upstream_retries",
            "Upstream calls tried again after a retryable failure.",
            ["provider"],
            registry=self.registry,
        )
        self.job_polls = Counter(
            "gateway_job_polls",
            "Status polls of upstream jobs.",
            ["provider"],
            registry=self.registry,
        )
        self.image_bytes = Counter(
            "gateway_image_bytes",
            "Image bytes the gateway fetched from client URLs, or produced by converting.",
            ["kind"],
            registry=self.registry,
        )
        self.state_errors = Counter(
            "gateway_state_backend_errors",
            "Operations the state backend could not serve (Redis unreachable).",
            registry=self.registry,
        )
        self.failovers = Counter(
            "gateway_failovers",
            "Failovers to the next deployment before the first byte.",
            ["model"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The text exposition; with several workers, the sum over all of them."""
        if MULTIPROCESS_ENV in os.environ:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

    @staticmethod
    def worker_exited() -> None:
        if MULTIPROCESS_ENV in os.environ:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    @contextmanager
    def track(self, model: str, *, stream: bool) -> Iterator[Outcome]:
        """Count one chat request: in flight meanwhile, then its status and duration."""
        outcome, started, kind = Outcome(), time.perf_counter(), "true" if stream else "false"
        self.in_flight.labels(kind).inc()
        try:
            yield outcome
        except BaseException as exc:
            outcome.status = str(getattr(exc, "status_code", 500))
            outcome.provider = getattr(exc, "provider", None) or outcome.provider
            raise
        finally:
            self.in_flight.labels(kind).dec()
            self.requests.labels(model, outcome.provider, outcome.status).inc()
            self.duration.labels(model, outcome.provider, kind).observe(
                time.perf_counter() - started
            )


@dataclass
class Outcome:
    provider: str = "none"
    status: str = "200"
