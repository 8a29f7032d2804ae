"""Responses requests in `/metrics` and the access log, under `api="responses"`, like chat."""

from __future__ import annotations

import openai
import pytest

from tests.e2e.conftest import AccessLog, MakeClient
from tests.e2e.deployments import png_bytes
from tests.e2e.responses.conftest import Fakes, StartAll
from tests.e2e.responses.helpers import QUESTION, RED_SQUARE, ask
from tests.e2e.test_accounting import scrape, wait_for
from tests.ops.traffic import metric_value

pytestmark = pytest.mark.e2e

TEAM = {"key": "sk-gw-resp-metrics-6a1e", "name": "vision-team"}


def responses_requests(url: str, **labels: str) -> float:
    return metric_value(scrape(url), "gateway_requests_total", api="responses", **labels)


def test_responses_are_counted_and_logged_apart_from_chat(
    start_all: StartAll, make_client: MakeClient, access_log: AccessLog
) -> None:
    url = start_all(server={"api_keys": [TEAM]})
    client = make_client(url, api_key=TEAM["key"])

    client.responses.create(model="openai", input=ask(QUESTION, RED_SQUARE))
    with client.responses.stream(model="openai", input="Hi.") as stream:
        stream.get_final_response()
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="Hi.")
    client.chat.completions.create(model="openai", messages=[{"role": "user", "content": "x"}])
    wait_for(lambda: responses_requests(url) == 3)

    text = scrape(url)
    assert metric_value(text, "gateway_requests_total", api="responses", status="200") == 2
    assert responses_requests(url, model="openai", provider="openai", key="vision-team") == 2
    assert responses_requests(url, status="404", outcome="rejected") == 1
    assert metric_value(text, "gateway_requests_total", api="chat") == 1
    streamed = metric_value(
        text, "gateway_request_duration_seconds_count", api="responses", stream="true"
    )
    assert streamed == 1
    tokens = "gateway_tokens_total"
    assert metric_value(text, tokens, key="vision-team", kind="prompt", model="openai") == 36
    assert metric_value(text, tokens, key="vision-team", kind="completion") == 21
    assert TEAM["key"] not in text
    logged = access_log(url)
    responses = [fields for fields in logged if fields.get("event") == "response"]
    assert len(responses) == 3
    assert {"model": "openai", "status": 200, "stream": False}.items() <= responses[0].items()
    assert responses[0]["images"]["count"] == 1
    assert {"stream": True, "status": 200}.items() <= responses[1].items()
    assert responses[2]["status"] == 404
    assert [f for f in logged if f.get("event") == "chat_completion"]


def test_a_streamed_job_response_counts_its_credits(
    start_all: StartAll, make_client: MakeClient, fakes: Fakes
) -> None:
    url = start_all()
    client = make_client(url)
    image = fakes["images"].put("square.png", png_bytes(16, 12))

    with client.responses.stream(model="vlmrun", input=ask(QUESTION, image)) as stream:
        final = stream.get_final_response()

    assert (final.model_extra or {})["x_gateway"]["credits_used"] == 100
    wait_for(lambda: responses_requests(url) == 1)
    assert metric_value(scrape(url), "gateway_job_credits_total", model="vlmrun") == 100
