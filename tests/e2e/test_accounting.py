"""What the gateway counts and logs about each request, read from a real server's `/metrics`
and access log while the openai SDK drives it."""

from __future__ import annotations

import time
import uuid

import httpx
import openai
import pytest

from tests.e2e.conftest import AccessLog, MakeClient, StartGateway
from tests.e2e.deployments import entry, user_message
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.ops.traffic import metric_value

pytestmark = pytest.mark.e2e

TEAM_A = {"key": "sk-gw-team-a-7d1f0c9e", "name": "team-a"}
TEAM_B = {"key": "sk-gw-team-b-20b8e6aa", "name": "team-b"}


def scrape(url: str) -> str:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    return response.text


def chat_requests(url: str, **labels: str) -> float:
    return metric_value(scrape(url), "gateway_requests_total", api="chat", **labels)


def wait_for(condition: object, seconds: float = 3.0) -> None:
    """Until `condition()` holds: the record of a stream closes just after its last byte."""
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def test_a_streams_duration_is_the_whole_stream(
    start_gateway: StartGateway, openai_upstream: FakeUpstream, make_client: MakeClient
) -> None:
    openai_upstream.script("slow", Reply(deltas=["a", "b", "c", "d", "e"], chunk_delay_s=0.15))
    url = start_gateway([entry("slow", openai_upstream)])
    client = make_client(url)

    stream = client.chat.completions.create(model="slow", messages=user_message(), stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert text == "abcde"
    total = "gateway_request_duration_seconds_sum"
    wait_for(lambda: metric_value(scrape(url), total, stream="true") > 0)
    assert metric_value(scrape(url), total, stream="true", model="slow") >= 0.7


def test_a_stream_that_fails_after_its_first_byte_counts_with_its_code(
    start_gateway: StartGateway, openai_upstream: FakeUpstream, make_client: MakeClient
) -> None:
    openai_upstream.script("breaks", Reply(error_after=2))
    url = start_gateway([entry("breaks", openai_upstream)])
    client = make_client(url)

    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(
            model="breaks", messages=user_message(), stream=True
        ):
            pass

    wait_for(lambda: chat_requests(url) == 1)
    assert chat_requests(url, status="502", outcome="upstream_failed") == 1
    assert chat_requests(url, status="200") == 0


def test_a_stream_the_client_leaves_counts_as_client_disconnected(
    start_gateway: StartGateway, openai_upstream: FakeUpstream, make_client: MakeClient
) -> None:
    openai_upstream.script("long", Reply(deltas=["x"] * 100, chunk_delay_s=0.05))
    url = start_gateway([entry("long", openai_upstream)])
    client = make_client(url)

    stream = client.chat.completions.create(model="long", messages=user_message(), stream=True)
    next(iter(stream))
    stream.close()

    wait_for(lambda: chat_requests(url) == 1)
    assert chat_requests(url, status="499", outcome="client_disconnected") == 1


def test_a_thousand_invented_ids_in_a_family_add_no_series(
    start_gateway: StartGateway, openai_upstream: FakeUpstream
) -> None:
    url = start_gateway([entry("fam/*", openai_upstream)])
    body = {"messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=url, timeout=10) as http:
        http.post("/v1/chat/completions", json={**body, "model": "fam/first"})
        before = len(scrape(url).splitlines())
        invented = [f"fam/{uuid.uuid4().hex}" for _ in range(1000)]
        for model in invented:
            assert http.post("/v1/chat/completions", json={**body, "model": model}).is_success
        text = scrape(url)

    assert len(text.splitlines()) - before <= 5
    assert not [model for model in invented if model in text]
    assert metric_value(text, "gateway_requests_total", model="fam/*") == 1001


def test_tokens_and_images_are_counted_by_key_name_never_by_key(
    start_gateway: StartGateway, openai_upstream: FakeUpstream, make_client: MakeClient
) -> None:
    openai_upstream.script("counted", Reply(usage=(12, 7)))
    url = start_gateway([entry("counted", openai_upstream)], server={"api_keys": [TEAM_A, TEAM_B]})
    team_a = make_client(url, api_key=TEAM_A["key"])

    team_a.chat.completions.create(model="counted", messages=user_message())
    for _ in team_a.chat.completions.create(model="counted", messages=user_message(), stream=True):
        pass
    make_client(url, api_key=TEAM_B["key"]).chat.completions.create(
        model="counted", messages=user_message()
    )

    wait_for(lambda: chat_requests(url) == 3)
    text = scrape(url)
    tokens = "gateway_tokens_total"
    assert metric_value(text, tokens, key="team-a", kind="prompt", model="counted") == 24
    assert metric_value(text, tokens, key="team-a", kind="completion") == 14
    assert metric_value(text, tokens, key="team-b", kind="prompt") == 12
    assert metric_value(text, "gateway_images_total", key="team-a") == 2
    assert TEAM_A["key"] not in text
    assert TEAM_B["key"] not in text


def test_a_keyless_request_is_counted_as_anonymous(
    start_gateway: StartGateway, openai_upstream: FakeUpstream, make_client: MakeClient
) -> None:
    url = start_gateway([entry("open", openai_upstream)])

    make_client(url).chat.completions.create(model="open", messages=user_message())

    assert metric_value(scrape(url), "gateway_tokens_total", key="anonymous", kind="prompt") > 0


def test_an_unknown_path_is_answered_logged_and_counted(
    start_gateway: StartGateway, access_log: AccessLog
) -> None:
    url = start_gateway([{"name": "inspect", "provider": "inspect"}])

    response = httpx.post(f"{url}/v1/no-such-endpoint", json={})
    wrong_method = httpx.delete(f"{url}/v1/chat/completions")
    # The line is written once the reply has gone out: it may follow it by a moment.
    wait_for(lambda: sum(line["method"] in ("POST", "DELETE") for line in access_log(url)) >= 2)

    assert response.status_code == 404
    error = response.json()["error"]
    assert "/v1/no-such-endpoint" in error["message"]
    assert "POST /v1/chat/completions" in error["message"]
    assert "GET /v1/models" in error["message"]
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert "/v1/chat/completions" in wrong_method.json()["error"]["message"]
    logged = access_log(url)
    by_method = {fields["method"]: fields for fields in logged if fields.get("status", 0) >= 400}
    assert {"path": "/v1/no-such-endpoint", "status": 404}.items() <= by_method["POST"].items()
    assert {"path": "/v1/chat/completions", "status": 405}.items() <= by_method["DELETE"].items()
    text = scrape(url)
    assert metric_value(text, "gateway_http_requests_total", route="unmatched", status="404") == 1
    assert metric_value(text, "gateway_http_requests_total", status="405") == 1


def test_an_unknown_path_is_quoted_short_whatever_its_length(
    start_gateway: StartGateway, access_log: AccessLog
) -> None:
    url = start_gateway([{"name": "inspect", "provider": "inspect"}])
    path = "/v1/" + "a" * 8000

    response = httpx.get(f"{url}{path}")
    wait_for(lambda: any(line["status"] == 404 for line in access_log(url)))

    assert response.status_code == 404
    assert len(response.json()["error"]["message"]) < 1000
    assert "a" * 200 not in response.text
    [line] = [line for line in access_log(url) if line["status"] == 404]
    assert line["path"] == "/v1/" + "a" * 96 + "…"
    assert line["message"] == f"GET {line['path']} -> 404"


def test_an_unknown_paths_log_line_is_scrubbed_of_keys_and_line_breaks(
    start_gateway: StartGateway, access_log: AccessLog
) -> None:
    key = "gw-unknown-path-5c2e81f07a"
    url = start_gateway([{"name": "inspect", "provider": "inspect"}], server={"api_keys": [key]})
    headers = {"Authorization": f"Bearer {key}"}

    typo = httpx.post(f"{url}/v1/chat/completion", json={}, headers=headers)
    leaked = httpx.get(f"{url}/v1/keys/{key}", headers=headers)
    forged = httpx.get(f"{url}/v1/a%0A%7B%22level%22%3A%22error%22%7D", headers=headers)
    wait_for(lambda: sum(line["status"] == 404 for line in access_log(url)) == 3)

    assert typo.status_code == leaked.status_code == forged.status_code == 404
    paths = [line["path"] for line in access_log(url) if line["status"] == 404]
    assert paths == [
        "/v1/chat/completion",
        "/v1/keys/[redacted]",
        '/v1/a\\n{"level":"error"}',
    ]
    log = "\n".join(str(line) for line in access_log(url))
    assert key not in log


def test_the_api_description_covers_every_public_endpoint(start_gateway: StartGateway) -> None:
    url = start_gateway([{"name": "inspect", "provider": "inspect"}])

    document = httpx.get(f"{url}/openapi.json").json()
    docs = httpx.get(f"{url}/docs")

    chat = document["paths"]["/v1/chat/completions"]["post"]
    request = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert request.endswith("/ChatCompletionRequest")
    assert {"/v1/models", "/v1/models/{model_id}", "/health", "/ready"} <= set(document["paths"])
    assert "ChatCompletionRequest" in document["components"]["schemas"]
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
