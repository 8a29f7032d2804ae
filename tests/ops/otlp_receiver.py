"""An OTLP/HTTP trace receiver on loopback, as the OpenTelemetry Collector takes traces:
`POST /v1/traces` with an `ExportTraceServiceRequest` in protobuf (gzipped or not), answered
with an `ExportTraceServiceResponse`. It keeps every span it was sent."""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PROTOBUF = "application/x-protobuf"
KINDS = {Span.SPAN_KIND_SERVER: "server", Span.SPAN_KIND_CLIENT: "client"}


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: str  # server, client, internal
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root
    attributes: dict[str, object]
    resource: dict[str, object]
    error: bool
    start_ns: int
    end_ns: int


def _value(value: AnyValue) -> object:
    which = value.WhichOneof("value")
    return getattr(value, which) if which else None


def _attributes(pairs: list[KeyValue]) -> dict[str, object]:
    return {pair.key: _value(pair.value) for pair in pairs}


class OTLPReceiver:
    def __init__(self) -> None:
        self.url = ""  # set once it is served
        self.spans: list[ReceivedSpan] = []
        self.exports = 0
        self.app = Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])])

    def reset(self) -> None:
        self.spans.clear()
        self.exports = 0

    def wait_for(self, name: str, timeout_s: float = 10.0) -> list[ReceivedSpan]:
        """Every span received once one named `name` has been."""
        deadline = time.monotonic() + timeout_s
        while not any(span.name == name for span in self.spans):
            if time.monotonic() > deadline:
                raise AssertionError(f"no span {name!r}; got {[s.name for s in self.spans]}")
            time.sleep(0.05)
        return list(self.spans)

    async def _traces(self, request: Request) -> Response:
        if request.headers.get("content-type") != PROTOBUF:
            return Response(status_code=415)
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        self.exports += 1
        for resource_spans in export.resource_spans:
            resource = _attributes(list(resource_spans.resource.attributes))
            for scope_spans in resource_spans.scope_spans:
                self.spans += [_received(span, resource) for span in scope_spans.spans]
        reply = ExportTraceServiceResponse().SerializeToString()
        return Response(reply, media_type=PROTOBUF)


def _received(span: Span, resource: dict[str, object]) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        kind=KINDS.get(span.kind, "internal"),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        attributes=_attributes(list(span.attributes)),
        resource=resource,
        error=span.status.code == Status.STATUS_CODE_ERROR,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
    )
