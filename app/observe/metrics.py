"""Prometheus metrics, one registry per app so that several apps can live in one process.

Every label value is bounded: models are labelled by their configured name or pattern
(`aimlapi/*`, `unknown`), keys by their configured name (`anonymous` without one), paths by
the endpoint's pattern (`unmatched` for unknown paths)."""

from __future__ import annotations

import os
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics import MetricWrapperBase

from app.observe.process import Workers, describe_process, describe_workers
from app.observe.record import RequestRecord

# Set (by `python -m app --workers N`) before any worker imports prometheus_client: every
# worker then writes its values to files there, and a scrape sums them.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_OVERHEAD_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1)

M = TypeVar("M", bound=MetricWrapperBase)


class Metrics:
    def __init__(self) -> None:
        # A `_created` series beside every counter and histogram doubles what is scraped for
        # a timestamp no query of these uses.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[MetricWrapperBase, tuple[str, ...]], MetricWrapperBase] = {}
        self.http_requests = Counter(
            "gateway_http_requests",
            "Every HTTP request, by endpoint pattern, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.requests = Counter(
            "gateway_requests",
            "Model requests (chat completions, responses) by how they ended. A stream that "
            "fails after its first byte counts with its error's status, not 200.",
            ["api", "model", "provider", "key", "status", "outcome"],
            registry=registry,
        )
        self.errors = Counter(
            "gateway_errors",
            "Requests that ended in an error, by API (`none` for other endpoints) and code.",
            ["api", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Total time of a model request; for a stream, until its last byte.",
            ["api", "model", "provider", "stream"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.first_token = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time until a stream's first content.",
            ["api", "model", "provider"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "Time the gateway itself spent on a non-streamed model request.",
            ["api", "model", "provider"],
            buckets=_OVERHEAD_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "gateway_tokens",
            "Tokens the upstreams reported, by model, provider, gateway key and kind.",
            ["model", "provider", "key", "kind"],
            registry=registry,
        )
        self.images = Counter(
            "gateway_images",
            "Images sent upstream, by model, provider and gateway key.",
            ["model", "provider", "key"],
            registry=registry,
        )
        self.document_pages = Counter(
            "gateway_document_pages",
            "Pages of documents rendered and sent upstream as images, by model, provider and "
            "gateway key.",
            ["model", "provider", "key"],
            registry=registry,
        )
        self.document_render = Histogram(
            "gateway_document_render_seconds",
            "Time to read and render one document's pages.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.credits = Counter(
            "gateway_job_credits",
            "Credits job upstreams reported as spent, by model, provider and gateway key.",
            ["model", "provider", "key"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "gateway_in_flight_requests",
            "Model requests being served.",
            ["api"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.streams = Gauge(
            "gateway_open_streams",
            "Streamed responses being sent.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors",
            "Upstream failures by provider and error code.",
            ["provider", "code"],
            registry=registry,
        )
        self.retries = Counter(
            "gateway_upstream_retries",
            "Upstream calls tried again after a retryable failure.",
            ["provider"],
            registry=registry,
        )
        self.job_polls = Counter(
            "gateway_job_polls",
            "Status polls of upstream jobs.",
            ["provider"],
            registry=registry,
        )
        self.image_bytes = Counter(
            "gateway_image_bytes",
            "Image bytes the gateway fetched from client URLs, or produced by converting.",
            ["kind"],
            registry=registry,
        )
        self.state_errors = Counter(
            "gateway_state_backend_errors",
            "Operations the state backend could not serve (Redis unreachable).",
            registry=registry,
        )
        self.responses_not_stored = Counter(
            "gateway_responses_not_stored",
            "Responses served but not stored, by gateway key and why: the store or the key's "
            "share of it was full (`full`), or the response was over the size of one stored "
            "record (`too_large`).",
            ["key", "reason"],
            registry=registry,
        )
        self.cache_requests = Counter(
            "gateway_cache_requests",
            "Requests to models that cache their answers, by model and how the cache served "
            "them: hit, miss (asked upstream), or bypass (not looked up).",
            ["model", "result"],
            registry=registry,
        )
        self.cache_bytes = Gauge(
            "gateway_cache_bytes",
            "What cached answers hold in the state backend, as last seen.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.cache_upstream_saved = Counter(
            "gateway_cache_upstream_seconds_saved",
            "Upstream time the cache's hits did not spend, by model (as their answers took).",
            ["model"],
            registry=registry,
        )
        self.cache_credits_saved = Counter(
            "gateway_cache_credits_saved",
            "Job credits the cache's hits did not spend, by model (as their answers cost).",
            ["model"],
            registry=registry,
        )
        self.failovers = Counter(
            "gateway_failovers",
            "Failovers to the next deployment before the first byte.",
            ["model"],
            registry=registry,
        )
        folder = os.environ.get(MULTIPROCESS_ENV)
        if folder is None:
            describe_process(registry)
        else:
            Workers.enter(folder)

    def render(self) -> bytes:
        """The text exposition; with several workers, the sum over all of them."""
        folder = os.environ.get(MULTIPROCESS_ENV)
        if folder is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            describe_workers(registry, folder)
            return generate_latest(registry)
        return generate_latest(self.registry)

    @staticmethod
    def worker_exited() -> None:
        folder = os.environ.get(MULTIPROCESS_ENV)
        if folder is not None:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
            Workers.leave(folder)

    def child(self, metric: M, *values: str) -> M:
        """`metric.labels(*values)`, kept: every request counts in a few children, and
        `labels` checks and converts its values on each call. The values are bounded (see
        above), and a child lives as long as its metric anyway."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found  # type: ignore[return-value]

    def observe(self, record: RequestRecord) -> None:
        """Count a finished request from its record."""
        child = self.child
        method = record.method if record.method in _METHODS else "other"
        child(self.http_requests, record.route, method, str(record.status)).inc()
        if record.status >= 400:
            child(self.errors, record.api or "none", record.error_code or "none").inc()
        if record.api is None:
            return
        api, model, provider, key = record.api, record.model_label, record.provider, record.key
        status = str(record.status)
        child(self.requests, api, model, provider, key, status, record.outcome).inc()
        stream = "true" if record.stream else "false"
        child(self.duration, api, model, provider, stream).observe(record.duration_s())
        if record.first_token_s is not None:
            child(self.first_token, api, model, provider).observe(record.first_token_s)
        if not record.stream and record.status == 200:
            child(self.overhead, api, model, provider).observe(record.overhead_ms() / 1000)
        if record.image_count:
            child(self.images, model, provider, key).inc(record.image_count)
        if record.document_pages:
            child(self.document_pages, model, provider, key).inc(record.document_pages)
        usage = record.usage
        if usage is not None:
            child(self.tokens, model, provider, key, "prompt").inc(usage.prompt_tokens)
            child(self.tokens, model, provider, key, "completion").inc(usage.completion_tokens)
            if usage.credits is not None:
                child(self.credits, model, provider, key).inc(usage.credits)
