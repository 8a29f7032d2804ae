"""Streams whose upstream is slow to start, on both APIs and for every kind of provider: the
head waits while the upstream answers quickly (a failure then is an HTTP status), and goes out
with `: keepalive` comments once it has been quiet for `server.stream_keepalive_s`. Until the
first chunk a failure still moves on to the next entry of the group; after the head, one that
ends the request is the stream's error event. A client that leaves meanwhile closes the
upstream call within a second."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import AccessLog, StartGateway
from tests.e2e.deployments import entry, png_data_uri
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.e2e.providers.deployments import PG_KEY, pg_entry
from tests.e2e.providers.fakes import FakePredictionGuard, PGReply
from tests.e2e.servers import ServedFakes
from tests.e2e.test_accounting import wait_for

pytestmark = pytest.mark.e2e

QUIET_S = 0.4  # server.stream_keepalive_s: also how long the head waits
SLOW_S = 2.0  # an upstream this slow gets the head and keepalives first
ANSWER = "A red square on a white background."
IMAGE = png_data_uri(8, 8)


@pytest.fixture
def pg(served_fakes: ServedFakes) -> FakePredictionGuard:
    return served_fakes.fresh(FakePredictionGuard, PG_KEY)


@pytest.fixture
def gateway(
    start_gateway: StartGateway, pg: FakePredictionGuard, openai_upstream: FakeUpstream
) -> str:
    """`pg`: one Prediction Guard entry (a stream with an image is one non-streamed call);
    `pg-group`: two of them; `openai`: an OpenAI-compatible upstream."""
    return start_gateway(
        [
            pg_entry("pg", pg),
            pg_entry("pg-group", pg),
            pg_entry("pg-group", pg),
            entry("openai", openai_upstream, upstream_model="slow"),
        ],
        server={"stream_keepalive_s": QUIET_S},
    )


@dataclass
class Heard:
    """A streamed reply as the client heard it: when its head came, and each piece of its
    body with the time it came."""

    started: float
    status: int = 0
    head_at: float = 0.0
    pieces: list[tuple[float, bytes]] = field(default_factory=list)

    @property
    def body(self) -> str:
        return b"".join(piece for _, piece in self.pieces).decode()

    def blocks(self) -> list[tuple[float, str]]:
        """Each SSE block (event or comment) with the time its last byte came."""
        found, text = [], ""
        for at, piece in self.pieces:
            text += piece.decode()
            while "\n\n" in text:
                block, text = text.split("\n\n", 1)
                found.append((at, block))
        return found

    def first_data_at(self) -> float:
        return next(at for at, block in self.blocks() if not block.startswith(":"))

    def keepalives_before_data(self) -> list[float]:
        first = self.first_data_at()
        return [at for at, block in self.blocks() if block == ": keepalive" and at < first]


def stream(url: str, path: str, body: dict[str, Any]) -> Heard:
    heard = Heard(time.monotonic())
    with httpx.stream("POST", f"{url}{path}", json=body, timeout=30) as response:
        heard.status, heard.head_at = response.status_code, time.monotonic()
        for piece in response.iter_raw():
            heard.pieces.append((time.monotonic(), piece))
    return heard


def chat(model: str) -> dict[str, Any]:
    content: list[Any] = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": IMAGE}},
    ]
    return {"model": model, "messages": [{"role": "user", "content": content}], "stream": True}


def responses(model: str) -> dict[str, Any]:
    parts: list[Any] = [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": IMAGE},
    ]
    return {"model": model, "input": [{"role": "user", "content": parts}], "stream": True}


def data_events(heard: Heard) -> list[Any]:
    return [
        block.split("data: ", 1)[1]
        for _, block in heard.blocks()
        if not block.startswith(":") and "data: " in block
    ]


def chat_text(heard: Heard) -> str:
    chunks = [json.loads(data) for data in data_events(heard) if data != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


def slow_upstream(kind: str, pg: FakePredictionGuard, upstream: FakeUpstream) -> None:
    """Script the upstream of `kind` to answer only after `SLOW_S`."""
    if kind == "pg":
        pg.script(PGReply(text=ANSWER, delay_s=SLOW_S))
    else:
        upstream.script("slow", Reply(text=ANSWER, delay_s=SLOW_S))


@pytest.mark.parametrize("kind", ["pg", "openai"])
def test_a_slow_chat_stream_gets_its_head_and_keepalives_while_the_upstream_works(
    gateway: str, pg: FakePredictionGuard, openai_upstream: FakeUpstream, kind: str
) -> None:
    slow_upstream(kind, pg, openai_upstream)

    heard = stream(gateway, "/v1/chat/completions", chat(kind))

    assert heard.status == 200
    # The head and a keepalive came after QUIET_S, long before the answer did.
    assert heard.head_at - heard.started < SLOW_S - 0.5
    assert heard.blocks()[0][1] == ": keepalive"
    assert len(heard.keepalives_before_data()) >= 3
    assert heard.first_data_at() - heard.started >= SLOW_S
    assert chat_text(heard) == ANSWER
    assert data_events(heard)[-1] == "[DONE]"


def test_a_slow_responses_stream_gets_its_head_and_keepalives_too(
    gateway: str, pg: FakePredictionGuard
) -> None:
    pg.script(PGReply(text=ANSWER, delay_s=SLOW_S))

    heard = stream(gateway, "/v1/responses", responses("pg"))

    assert heard.status == 200
    assert heard.head_at - heard.started < SLOW_S - 0.5
    assert len(heard.keepalives_before_data()) >= 3
    events = [json.loads(data) for data in data_events(heard)]
    assert [event["type"] for event in events][:2] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == ANSWER


def test_a_quick_failure_is_still_an_http_status(gateway: str, pg: FakePredictionGuard) -> None:
    pg.script(PGReply(status=500, error="the model is down"))

    heard = stream(gateway, "/v1/chat/completions", chat("pg"))

    assert heard.status == 502
    assert json.loads(heard.body)["error"]["code"] == "upstream_failed"


def test_failover_goes_on_after_the_head_until_the_first_chunk(
    gateway: str, pg: FakePredictionGuard
) -> None:
    # The first entry fails after the head went out; the second answers.
    pg.script(
        PGReply(status=500, error="the model is down", delay_s=1.0),
        PGReply(text=ANSWER, delay_s=0.2),
    )

    heard = stream(gateway, "/v1/chat/completions", chat("pg-group"))

    assert heard.status == 200
    assert heard.blocks()[0][1] == ": keepalive"
    assert heard.keepalives_before_data()
    assert chat_text(heard) == ANSWER
    assert data_events(heard)[-1] == "[DONE]"
    first, _ = pg.received
    assert first.answered_at is not None
    assert heard.head_at < first.answered_at  # the head went out before the first one failed


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_failure_after_the_head_is_the_streams_error_event(
    gateway: str, pg: FakePredictionGuard, access_log: AccessLog, api: str
) -> None:
    pg.script(PGReply(status=500, error="the model is down", delay_s=1.0))

    if api == "chat":
        heard = stream(gateway, "/v1/chat/completions", chat("pg"))
        [error] = [json.loads(data) for data in data_events(heard)]
        assert error["error"]["code"] == "upstream_failed"
        assert "[DONE]" not in heard.body
    else:
        heard = stream(gateway, "/v1/responses", responses("pg"))
        events = [json.loads(data) for data in data_events(heard)]
        assert [event["type"] for event in events] == [
            "response.created",
            "response.in_progress",
            "error",
            "response.failed",
        ]
        assert events[2]["code"] == "upstream_failed"
        assert events[3]["response"]["status"] == "failed"
    assert heard.status == 200
    assert heard.blocks()[0][1] == ": keepalive"
    wait_for(lambda: any(line.get("model") == "pg" for line in access_log(gateway)))
    [line] = [line for line in access_log(gateway) if line.get("model") == "pg"]
    assert (line["status"], line["error"]) == (502, "upstream_failed")


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("leaves", ["before the head", "after the head"])
def test_a_client_that_leaves_during_the_wait_closes_the_upstream_call(
    gateway: str, pg: FakePredictionGuard, api: str, leaves: str
) -> None:
    pg.script(PGReply(text=ANSWER, delay_s=10.0))
    path, body = ("/v1/chat/completions", chat("pg"))
    if api == "responses":
        path, body = "/v1/responses", responses("pg")

    with httpx.Client(timeout=30) as client:
        if leaves == "before the head":
            with pytest.raises(httpx.ReadTimeout):
                client.post(f"{gateway}{path}", json=body, timeout=QUIET_S / 4)
        else:
            with client.stream("POST", f"{gateway}{path}", json=body) as response:
                assert next(response.iter_raw()) == b": keepalive\n\n"
    left_at = time.monotonic()

    wait_for(lambda: bool(pg.received) and pg.received[0].abandoned_at is not None, 3.0)
    abandoned_at = pg.received[0].abandoned_at
    assert abandoned_at is not None
    assert abandoned_at - left_at < 1.0


def test_an_upstream_quicker_than_the_quiet_time_streams_as_before(
    start_gateway: StartGateway, pg: FakePredictionGuard
) -> None:
    url = start_gateway([pg_entry("pg", pg)], server={"stream_keepalive_s": 5})
    pg.script(PGReply(text=ANSWER, delay_s=0.3))

    heard = stream(url, "/v1/chat/completions", chat("pg"))

    assert heard.keepalives_before_data() == []
    assert heard.blocks()[0][1].startswith("data: ")
    assert chat_text(heard) == ANSWER
