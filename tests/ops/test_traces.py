"""Traces, as a gateway process started with the standard OTEL_* variables sends them to an
OTLP/HTTP receiver: the span tree of a request, its attempts and their work (images,
documents, jobs), the client's `traceparent` continued, and the upstream told which span
each of its requests belongs to."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.documents import REPORT_TEXTS, report_pdf
from tests.e2e.deployments import entry, png_bytes
from tests.e2e.fakes.images import ImageHost
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.e2e.providers.deployments import MPX_KEY, ask, mpx_entry
from tests.e2e.providers.fakes import FakeMasterpieceX
from tests.e2e.providers.fakes.masterpiecex import MPXJob
from tests.e2e.servers import ServedFakes, serve_in_thread
from tests.ops.configs import gateway_config
from tests.ops.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OTLPReceiver]:
    receiver = OTLPReceiver()
    with serve_in_thread(receiver.app) as url:
        receiver.url = url
        yield receiver


@pytest.fixture
def otlp(receiver: OTLPReceiver) -> OTLPReceiver:
    receiver.reset()
    return receiver


def traced_env(receiver: OTLPReceiver) -> dict[str, str]:
    """The variables an operator sets to send traces to `receiver`, spans sent every 100 ms."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "gateway-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


@pytest.fixture
def mpx(served_fakes: ServedFakes) -> FakeMasterpieceX:
    return served_fakes.fresh(FakeMasterpieceX, MPX_KEY)


@pytest.fixture
def image_host(served_fakes: ServedFakes) -> ImageHost:
    return served_fakes.fresh(ImageHost)


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return sorted(
        (span for span in spans if span.parent_span_id == parent.span_id),
        key=lambda span: span.start_ns,
    )


def shape(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[object]:
    """The tree under `parent` as (name, its children's tree) pairs, in start order."""
    return [(child.name, shape(spans, child)) for child in children(spans, parent)]


def test_a_streamed_job_request_with_a_failover_leaves_its_span_tree(
    otlp: OTLPReceiver,
    mpx: FakeMasterpieceX,
    image_host: ImageHost,
    gateways: Gateways,
) -> None:
    mpx.script(MPXJob(submit_status=500), MPXJob(polls=2))
    url = image_host.put("cat.png", png_bytes(40, 30))
    # Two deployments of one name: the first fails its submission, the second answers.
    models = [mpx_entry(mpx, "vision"), mpx_entry(mpx, "vision")]
    config = gateway_config(models, images={"allow_private_networks": True})
    gateway = gateways.start(config, env=traced_env(otlp))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)

    stream = client.chat.completions.create(
        model="vision",
        messages=ask("What is it?", url),
        stream=True,
        extra_headers={"traceparent": TRACEPARENT},
    )
    answer = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    spans = otlp.wait_for("POST /v1/chat/completions")

    assert answer == "A red square on a white background."
    [request] = [span for span in spans if span.kind == "server"]
    assert (request.trace_id, request.parent_span_id) == (CLIENT_TRACE, CLIENT_SPAN)
    assert {span.trace_id for span in spans} == {CLIENT_TRACE}
    assert shape(spans, request) == [
        ("chat vision", [("image fetch", []), ("image conversion", []), ("job submit", [])]),
        (
            "chat vision",
            [
                ("image fetch", []),
                ("image conversion", []),
                ("job submit", []),
                ("job poll", []),
                ("job poll", []),
                ("job poll", []),
            ],
        ),
    ]
    failed, answered = children(spans, request)
    assert failed.kind == answered.kind == "client"
    assert failed.attributes["vision_gateway.attempt.kind"] == "first"
    assert failed.attributes["error.type"] == "upstream_failed"
    assert failed.error
    assert answered.attributes["vision_gateway.attempt"] == 2
    assert answered.attributes["vision_gateway.attempt.kind"] == "failover"
    assert not answered.error
    for attempt in (failed, answered):
        assert attempt.attributes["gen_ai.operation.name"] == "chat"
        assert attempt.attributes["gen_ai.provider.name"] == "masterpiecex"
        assert attempt.attributes["gen_ai.request.model"] == "vision"
    assert failed.attributes["vision_gateway.deployment"] == "vision#0"
    assert answered.attributes["vision_gateway.deployment"] == "vision#1"
    polls = [span for span in children(spans, answered) if span.name == "job poll"]
    statuses = [poll.attributes["vision_gateway.job.status"] for poll in polls]
    assert statuses == ["queued", "running", "succeeded"]
    # The stream lasts until its last chunk: so do the request's and the attempt's spans.
    assert answered.end_ns >= polls[-1].end_ns
    assert request.end_ns >= answered.end_ns
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["http.route"] == "/v1/chat/completions"
    assert request.attributes["gen_ai.request.model"] == "vision"
    assert request.attributes["gen_ai.provider.name"] == "masterpiecex"
    assert request.attributes["vision_gateway.stream"] is True
    assert request.resource["service.name"] == "gateway-under-test"

    # Each upstream request carries the span it was made in.
    submits = [span for span in spans if span.name == "job submit"]
    sent = [r.headers["traceparent"] for r in mpx.received if r.path.endswith("/image_query")]
    assert sent[-1] == f"00-{CLIENT_TRACE}-{submits[-1].span_id}-01"
    status_parents = [
        r.headers["traceparent"].split("-")[2] for r in mpx.received if "/status/" in r.path
    ]
    assert status_parents == [poll.span_id for poll in polls]


def test_retries_and_a_refusal_are_told_apart(
    otlp: OTLPReceiver, upstream: FakeUpstream, gateways: Gateways
) -> None:
    upstream.script("up-retried", Reply(status=503), Reply())
    models = [entry("vision", upstream, upstream_model="up-retried", retries=1)]
    gateway = gateways.start(gateway_config(models), env=traced_env(otlp))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)

    client.chat.completions.create(model="vision", messages=ask("Hello"))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nothing-here", messages=ask("Hello"))
    spans = otlp.wait_for("POST /v1/chat/completions")
    while len([s for s in spans if s.kind == "server"]) < 2:
        spans = otlp.wait_for("POST /v1/chat/completions")

    served, refused = sorted((s for s in spans if s.kind == "server"), key=lambda s: s.start_ns)
    assert served.parent_span_id == ""  # no traceparent sent: a trace of its own
    assert [
        (span.name, span.attributes["vision_gateway.attempt.kind"], span.error)
        for span in children(spans, served)
    ] == [("chat up-retried", "first", True), ("chat up-retried", "retry", False)]
    assert children(spans, refused) == []
    assert refused.attributes["http.response.status_code"] == 404
    assert refused.attributes["error.type"] == "model_not_found"
    assert not refused.error  # a client's mistake is no failure of the server


def test_probes_leave_no_trace(otlp: OTLPReceiver, gateways: Gateways) -> None:
    gateway = gateways.start(gateway_config(), env=traced_env(otlp))

    for path in ("/health", "/ready", "/metrics", "/v1/models"):
        httpx.get(gateway.url + path, timeout=5)
    spans = otlp.wait_for("GET /v1/models")

    assert [span.name for span in spans] == ["GET /v1/models"]


def stopped(gateway: GatewayProcess) -> GatewayProcess:
    gateway.stop()  # whatever it still held is sent on the way out
    return gateway


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="no variable set"),
        pytest.param({"OTEL_SDK_DISABLED": "true"}, id="disabled"),
        pytest.param({"OTEL_TRACES_EXPORTER": "none"}, id="exporter none"),
    ],
)
def test_traces_are_off_unless_the_variables_ask_for_them(
    otlp: OTLPReceiver, upstream: FakeUpstream, gateways: Gateways, env: dict[str, str]
) -> None:
    variables = {**traced_env(otlp), **env} if env else {"OTEL_SERVICE_NAME": "untraced"}
    models = [entry("vision", upstream, upstream_model="up-untraced")]
    gateway = gateways.start(gateway_config(models), env=variables)
    headers = {"traceparent": TRACEPARENT}

    httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "vision", "messages": ask("Hello")},
        headers=headers,
        timeout=10,
    )
    stopped(gateway)

    assert otlp.exports == 0
    [received] = upstream.received
    assert "traceparent" not in received.headers
    assert "traces are on" not in gateway.log_text()


def test_a_document_is_fetched_and_rendered_within_its_attempt(
    otlp: OTLPReceiver, image_host: ImageHost, gateways: Gateways
) -> None:
    url = image_host.put("report.pdf", report_pdf().data, "application/pdf")
    config = gateway_config(images={"allow_private_networks": True})
    gateway = gateways.start(config, env=traced_env(otlp))
    document = {"type": "file", "file": {"filename": "report.pdf", "file_data": url}}
    body = {"model": "inspect", "messages": [{"role": "user", "content": [document]}]}

    reply = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)
    spans = otlp.wait_for("POST /v1/chat/completions")

    assert reply.status_code == 200, reply.text
    [request] = [span for span in spans if span.kind == "server"]
    [attempt] = children(spans, request)
    work = [span.name for span in children(spans, attempt)]
    assert work[:2] == ["document fetch", "document render"]
    assert work[2:] == ["image conversion"] * len(REPORT_TEXTS)
    [render] = [span for span in spans if span.name == "document render"]
    assert render.attributes["vision_gateway.document.pages"] == len(REPORT_TEXTS)
