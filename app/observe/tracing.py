"""Traces: OpenTelemetry spans in the GenAI semantic conventions, sent over OTLP/HTTP.

A request is a server span (`POST /v1/chat/completions`, the client's `traceparent` its
parent); each upstream attempt is a client span beneath it (`chat <upstream model>`, with the
provider, and whether it was the first try, a retry or a failover), and beneath that each
image fetch and conversion, document fetch and render, and job submit and poll. Upstream
requests carry the `traceparent` of the span they belong to. Probes (`/health`, `/ready`,
`/metrics`) leave none.

Configured by the standard variables: on when `OTEL_TRACES_EXPORTER` names `otlp` (or
`console`), or an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); off when neither is, or `OTEL_SDK_DISABLED=true`, or
`OTEL_TRACES_EXPORTER=none`. The SDK reads the rest itself (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, the exporter's headers and timeout, ...).

Off, the SDK and its exporter are not imported, and each seam below checks one module
variable and hands back a shared object that does nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from app import __version__
from app.observe.record import RequestRecord

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

T = TypeVar("T")

logger = logging.getLogger(__name__)

SERVICE_NAME = "vision-gateway"
PROBES = frozenset({"/health", "/ready", "/metrics"})
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

# Set once per process by `start`: a worker's tracer, or None while traces are off.
_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_request: ContextVar[RequestTrace | None] = ContextVar("request_trace", default=None)


class Traced(Protocol):
    """What a seam hands back: a span current for a `with` block (or nothing, while traces
    are off), told what was found (`set`); an upstream attempt's also follows its stream."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None
    ) -> None: ...

    def set(self, key: str, value: Any) -> None: ...

    def follow(self, chunks: AsyncGenerator[T]) -> AsyncGenerator[T]: ...


class Off:
    """What every seam hands back while traces are off: it does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None
    ) -> None:
        return None

    def set(self, key: str, value: Any) -> None:
        pass

    def follow(self, chunks: AsyncGenerator[T]) -> AsyncGenerator[T]:
        return chunks


OFF = Off()


def exporters(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the variables ask for; none means traces are off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get("OTEL_TRACES_EXPORTER")
    if named is None:
        return ["otlp"] if any(environ.get(name) for name in _ENDPOINTS) else []
    wanted = [name.strip().lower() for name in named.split(",") if name.strip()]
    for name in wanted:
        if name not in ("otlp", "console", "none"):
            logger.warning("OTEL_TRACES_EXPORTER: %r is not served here (otlp, console)", name)
    return [name for name in wanted if name in ("otlp", "console")]


def enabled() -> bool:
    return _tracer is not None


def start(environ: Mapping[str, str]) -> None:
    """Start this process's tracer if the variables ask for traces (once per process)."""
    global _tracer, _provider
    names = exporters(environ)
    if _tracer is not None or not names:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    ours: dict[str, str] = {"service.version": __version__}
    if not environ.get("OTEL_SERVICE_NAME") and "service.name=" not in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        ours["service.name"] = SERVICE_NAME  # the operator's name for it wins
    resource = Resource.create(ours)  # with OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            protocol = environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            if protocol != "http/protobuf":
                logger.warning(
                    "OTEL_EXPORTER_OTLP_PROTOCOL=%s: traces go as http/protobuf", protocol
                )
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    _provider, _tracer = provider, provider.get_tracer("vision-gateway", __version__)
    where = next((environ[name] for name in _ENDPOINTS if environ.get(name)), "the default")
    logger.info("traces are on: %s (OTLP endpoint: %s)", ", ".join(names), where)


def stop() -> None:
    """Send the spans still waiting and stop the tracer."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


class RequestTrace:
    """The server span of one request, current while it is served, and its attempts."""

    def __init__(self, span: Span, token: object) -> None:
        self.span = span
        self._token = token
        self.attempts = 0
        self.last_deployment = ""

    def end(self, record: RequestRecord) -> None:
        from opentelemetry import context
        from opentelemetry.trace import StatusCode

        span = self.span
        span.update_name(f"{record.method} {record.route}")
        span.set_attribute("http.route", record.route)
        span.set_attribute("http.response.status_code", record.status)
        if record.api is not None:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.request.model", record.model)
            span.set_attribute("gen_ai.provider.name", record.provider)
            span.set_attribute("vision_gateway.api", record.api)
            span.set_attribute("vision_gateway.stream", record.stream)
            if record.usage is not None:
                span.set_attribute("gen_ai.usage.input_tokens", record.usage.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", record.usage.completion_tokens)
        if record.error_code:
            span.set_attribute("error.type", record.error_code)
        if record.status >= 500:
            span.set_status(StatusCode.ERROR, record.error_code or str(record.status))
        span.end()
        context.detach(self._token)  # type: ignore[arg-type]


def request(scope: Mapping[str, Any]) -> RequestTrace | None:
    """The server span of a request arriving (None while traces are off, and for probes),
    the client's `traceparent` its parent; current from here on."""
    if _tracer is None or scope["path"] in PROBES:
        return None
    from opentelemetry import context, propagate, trace

    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    parent = propagate.extract(headers)
    client = scope.get("client") or ("", 0)
    span = _tracer.start_span(
        f"{scope['method']}",
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes={
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
            "client.address": client[0],
            "user_agent.original": headers.get("user-agent", ""),
        },
    )
    token = context.attach(trace.set_span_in_context(span, parent))
    traced = RequestTrace(span, token)
    _request.set(traced)
    return traced


def upstream_attempt(provider: str, model: str, deployment: str) -> Traced:
    """The span of one try at a deployment: `chat <model>`, current while it runs; with
    `follow`, a stream read after it returned stays in it."""
    if _tracer is None:
        return OFF
    from opentelemetry import trace

    kind = "first"
    traced = _request.get()
    if traced is not None:
        traced.attempts += 1
        if traced.attempts > 1:
            kind = "retry" if traced.last_deployment == deployment else "failover"
        traced.last_deployment = deployment
    span = _tracer.start_span(
        f"chat {model}",
        kind=trace.SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "vision_gateway.deployment": deployment,
            "vision_gateway.attempt": traced.attempts if traced is not None else 1,
            "vision_gateway.attempt.kind": kind,
        },
    )
    from app.observe.spans import Upstream

    return Upstream(span)


def step(name: str, provider: str | None = None) -> Traced:
    """The span of one piece of work (`image fetch`, `image conversion`, `document fetch`,
    `document render`, `job submit`, `job poll`), current while it runs; `set` adds what it
    found."""
    if _tracer is None:
        return OFF
    from app.observe.spans import Step

    span = _tracer.start_span(name)
    if provider is not None:
        span.set_attribute("gen_ai.provider.name", provider)
    return Step(span)


def propagation() -> Iterator[tuple[str, str]]:
    """The headers that carry the current span to an upstream (none while traces are off)."""
    if _tracer is None:
        return iter(())
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return iter(carrier.items())
