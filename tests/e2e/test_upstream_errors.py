"""The error table for upstream failures, through both flavours of fake upstream: status,
`type` and `code` of each, and no upstream key in any error body."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import openai
import pytest

from tests.e2e.conftest import StartGateway
from tests.e2e.deployments import chat_request, entry, user_message
from tests.e2e.envelope import assert_error
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.e2e.servers import refused_port

pytestmark = pytest.mark.e2e


@dataclass
class Family:
    """A wildcard family on the shared gateway and the fake behind it."""

    prefix: str
    fake: FakeUpstream

    def script(self, name: str, reply: Reply) -> str:
        """Script `reply` for one upstream model; returns the client's model id for it."""
        self.fake.script(name, reply)
        return f"{self.prefix}/{name}"


@pytest.fixture(params=["openai", "aimlapi"])
def family(
    request: pytest.FixtureRequest, openai_upstream: FakeUpstream, aimlapi_upstream: FakeUpstream
) -> Family:
    if request.param == "aimlapi":
        return Family("aiml", aimlapi_upstream)
    return Family("fake", openai_upstream)


def test_upstream_4xx_is_rejected_with_its_message(http: httpx.Client, family: Family) -> None:
    model = family.script(
        "picky", Reply(status=400, error="Body validation error! (key {api_key})")
    )

    response = http.post("/v1/chat/completions", json=chat_request(model))

    error = assert_error(response, 400, "invalid_request_error", "upstream_rejected")
    assert "Body validation error!" in error["message"]


@pytest.mark.parametrize("status", [401, 403])
def test_upstream_refusing_our_key(http: httpx.Client, family: Family, status: int) -> None:
    model = family.script("locked", Reply(status=status, error="Invalid API key: {api_key}"))

    response = http.post("/v1/chat/completions", json=chat_request(model))

    assert_error(response, 502, "upstream_error", "upstream_auth_failed")


def test_upstream_rate_limit_keeps_retry_after(
    http: httpx.Client, client: openai.OpenAI, family: Family
) -> None:
    model = family.script("busy", Reply(status=429, headers={"Retry-After": "7"}))

    response = http.post("/v1/chat/completions", json=chat_request(model))

    assert_error(response, 429, "rate_limit_error", "upstream_rate_limited")
    assert response.headers["retry-after"] == "7"
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model=model, messages=user_message())
    assert raised.value.response.headers["retry-after"] == "7"


def test_upstream_rate_limit_after_retries_waits_retry_after(
    start_gateway: StartGateway, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("busy", Reply(status=429, headers={"Retry-After": "1"}))
    gateway = start_gateway([entry("vision", openai_upstream, upstream_model="busy", retries=1)])

    started = time.monotonic()
    response = httpx.post(f"{gateway}/v1/chat/completions", json=chat_request("vision"))

    assert time.monotonic() - started >= 1.0
    assert_error(response, 429, "rate_limit_error", "upstream_rate_limited")
    assert response.headers["retry-after"] == "1"
    assert [r.model for r in openai_upstream.received] == ["busy", "busy"]


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_5xx(http: httpx.Client, family: Family, stream: bool) -> None:
    model = family.script("down", Reply(status=500, error="internal failure, key {api_key}"))

    response = http.post("/v1/chat/completions", json=chat_request(model, stream=stream))

    assert_error(response, 502, "upstream_error", "upstream_failed")


def test_malformed_upstream_reply(http: httpx.Client, family: Family) -> None:
    model = family.script("garbled", Reply(body=b'{"choices": [{"message": '))

    response = http.post("/v1/chat/completions", json=chat_request(model))

    assert_error(response, 502, "upstream_error", "upstream_failed")


@pytest.mark.parametrize("stream", [False, True])
def test_unreachable_upstream(start_gateway: StartGateway, stream: bool) -> None:
    with refused_port() as url:
        gateway = start_gateway([entry("vision", f"{url}/v1")])

        response = httpx.post(
            f"{gateway}/v1/chat/completions", json=chat_request("vision", stream=stream)
        )

    assert_error(response, 503, "upstream_error", "upstream_unavailable")


@pytest.mark.parametrize("stream", [False, True])
def test_deadline_passed(
    start_gateway: StartGateway, openai_upstream: FakeUpstream, stream: bool
) -> None:
    openai_upstream.script("slow", Reply(delay_s=1.5))
    gateway = start_gateway(
        [entry("vision", openai_upstream, upstream_model="slow", timeout_s=0.3)]
    )

    started = time.monotonic()
    response = httpx.post(
        f"{gateway}/v1/chat/completions", json=chat_request("vision", stream=stream)
    )

    assert time.monotonic() - started < 1.2
    assert_error(response, 504, "upstream_error", "upstream_timeout")
