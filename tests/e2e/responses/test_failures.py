"""Responses streams when things go wrong or take long: an HTTP error before the first byte,
`error` then `response.failed` after it, keepalives while a job runs, and a client that leaves
stopping the upstream work."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.e2e.deployments import png_bytes
from tests.e2e.envelope import assert_error
from tests.e2e.fakes.openai_compat import Reply
from tests.e2e.providers.fakes import MPXJob
from tests.e2e.responses.conftest import Fakes
from tests.e2e.responses.helpers import QUESTION, RED_SQUARE, ask, raw_events

pytestmark = pytest.mark.e2e


def post_stream(url: str, model: str, input_: object) -> httpx.Response:
    body = {"model": model, "input": input_, "stream": True}
    return httpx.post(f"{url}/v1/responses", json=body, timeout=15)


@pytest.mark.parametrize("stream", [False, True])
def test_a_failure_before_the_first_byte_is_an_http_error(
    all_gateway: str, fakes: Fakes, stream: bool
) -> None:
    fakes["openai"].script("upstream-vision", Reply(status=500))
    body = {"model": "openai", "input": "Hi.", "stream": stream}

    answer = httpx.post(f"{all_gateway}/v1/responses", json=body, timeout=10)

    assert_error(answer, 502, "upstream_error", "upstream_failed")


def test_a_failure_after_the_first_byte_is_an_error_event_then_response_failed(
    all_gateway: str, fakes: Fakes
) -> None:
    fakes["openai"].script("upstream-vision", Reply(error_after=2))

    answer = post_stream(all_gateway, "openai", ask(QUESTION, RED_SQUARE))

    assert answer.status_code == 200
    events, _ = raw_events(answer)
    types = [event["type"] for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-2:] == ["error", "response.failed"]
    assert types.count("response.output_text.delta") == 2
    assert "response.completed" not in types
    error, failed = events[-2], events[-1]
    assert error["code"] == "upstream_failed"
    assert error["message"]
    assert failed["response"]["status"] == "failed"
    # OpenAI's codes for a failed response are few: the gateway's own is its `type`.
    assert failed["response"]["error"]["code"] == "server_error"
    assert failed["response"]["error"]["type"] == "upstream_failed"
    assert failed["sequence_number"] == error["sequence_number"] + 1


def test_the_sdk_sees_the_error_and_the_failed_response(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    fakes["openai"].script("upstream-vision", Reply(error_after=1))

    with sync_client.responses.create(model="openai", input="Hi.", stream=True) as stream:
        events = list(stream)

    assert [event.type for event in events][-2:] == ["error", "response.failed"]
    assert events[-1].response.status == "failed"  # type: ignore[union-attr]


def test_an_upstream_stream_ending_with_done_but_no_finish_reason_completes(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    fakes["openai"].script("upstream-vision", Reply(text="A red square.", sends_finish=False))

    with sync_client.responses.stream(model="openai", input="Hi.") as stream:
        types = [event.type for event in stream]
        response = stream.get_final_response()

    assert types[-1] == "response.completed"
    assert response.status == "completed"
    assert response.output_text == "A red square."
    assert sync_client.responses.retrieve(response.id).status == "completed"


def test_a_failed_job_after_the_first_byte_ends_the_stream_with_response_failed(
    all_gateway: str, fakes: Fakes
) -> None:
    fakes["masterpiecex"].script(MPXJob(fail="the model could not read the image"))

    answer = post_stream(all_gateway, "masterpiecex", ask(QUESTION, RED_SQUARE))

    events, _ = raw_events(answer)
    assert [event["type"] for event in events][-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == "job_failed"
    assert events[-1]["response"]["error"]["type"] == "job_failed"


def test_a_long_job_streams_keepalives_then_the_events(
    start_all: Callable[..., str], fakes: Fakes
) -> None:
    url = start_all(server={"stream_keepalive_s": 0.1})
    fakes["masterpiecex"].script(MPXJob(duration_s=0.8))
    body = {"model": "masterpiecex", "input": ask(QUESTION, RED_SQUARE), "stream": True}
    blocks: list[tuple[float, str]] = []

    with httpx.stream("POST", f"{url}/v1/responses", json=body, timeout=15) as answer:
        assert answer.status_code == 200
        text = ""
        for piece in answer.iter_text():
            text += piece
            *whole, text = text.split("\n\n")
            blocks += [(time.monotonic(), block) for block in whole]

    [run] = fakes["masterpiecex"].jobs.values()
    assert run.done_at is not None
    keepalives = [at for at, block in blocks if block.startswith(":")]
    assert len(keepalives) >= 3
    assert all(block == ": keepalive" for _, block in blocks if block.startswith(":"))
    assert blocks[0][1].startswith("event: response.created")
    assert keepalives[0] < run.done_at
    rebuilt = httpx.Response(200, text="".join(block + "\n\n" for _, block in blocks))
    events, _ = raw_events(rebuilt)
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["x_gateway"]["provider"] == "masterpiecex"
    assert events[-1]["response"]["x_gateway"]["balance"] == 1234


def test_a_client_that_leaves_a_stream_closes_the_upstream_stream(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    upstream = fakes["openai"]
    upstream.script("upstream-vision", Reply(deltas=["x"] * 200, chunk_delay_s=0.05))

    stream = sync_client.responses.create(model="openai", input="Go on.", stream=True)
    for event in stream:
        if event.type == "response.output_text.delta":
            break
    stream.close()
    closed_at = time.monotonic()

    [sent] = upstream.received
    assert sent.stream_cancelled.wait(2.0), "the upstream stream was never closed"
    assert sent.cancelled_at is not None
    assert sent.cancelled_at - closed_at < 1.0


def test_a_client_that_leaves_a_job_stream_stops_the_polling(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    mpx = fakes["masterpiecex"]
    mpx.script(MPXJob(polls=100_000))
    url = fakes["images"].put("square.png", png_bytes(10, 10))

    stream = sync_client.responses.create(
        model="masterpiecex",
        input=ask(QUESTION, url),
        stream=True,
    )
    next(iter(stream))
    deadline = time.monotonic() + 3
    while len(mpx.polls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stream.close()
    closed_at = time.monotonic()

    time.sleep(1.0)
    settled = len(mpx.polls)
    time.sleep(0.3)

    assert settled >= 3
    assert len(mpx.polls) == settled, "polling went on after the client left"
    assert mpx.polls[-1].at < closed_at + 1.0
