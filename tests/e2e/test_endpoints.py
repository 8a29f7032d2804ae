"""The HTTP surface around completions: health, readiness, metrics, models and headers."""

from __future__ import annotations

import re
import uuid

import httpx
import openai
import pytest

from tests.e2e.conftest import StartGateway
from tests.e2e.deployments import chat_request, inspect_request
from tests.e2e.envelope import assert_error
from tests.e2e.fakes.openai_compat import LISTED_MODELS, FakeUpstream, Reply

pytestmark = pytest.mark.e2e


def test_health(http: httpx.Client) -> None:
    response = http.get("/health")

    assert response.status_code == 200
    assert response.headers["x-request-id"]


def test_ready(http: httpx.Client) -> None:
    assert http.get("/ready").status_code == 200


def test_metrics_count_chat_requests(http: httpx.Client) -> None:
    assert http.post("/v1/chat/completions", json=inspect_request()).status_code == 200
    assert http.post("/v1/chat/completions", json=chat_request("no-such-model")).status_code == 404

    response = http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE gateway_requests_total counter" in response.text
    served = re.search(
        r'^gateway_requests_total\{[^}]*model="inspect"[^}]*status="200"[^}]*\} '
        r"([0-9.e+]+)$",
        response.text,
        re.MULTILINE,
    )
    assert served is not None, response.text
    assert float(served.group(1)) >= 1


def test_unknown_model_names_share_one_metrics_label(http: httpx.Client) -> None:
    invented = [f"invented-{uuid.uuid4().hex}" for _ in range(3)]
    for model in invented:
        assert http.post("/v1/chat/completions", json=chat_request(model)).status_code == 404

    text = http.get("/metrics").text

    assert not [model for model in invented if model in text]
    assert re.search(r'^gateway_requests_total\{[^}]*model="unknown"[^}]*status="404"', text, re.M)


def test_models_lists_served_names_with_their_provider(client: openai.OpenAI) -> None:
    listed = {model.id: model for model in client.models.list()}

    family = {f"{prefix}/{model}" for prefix in ("fake", "aiml") for model in LISTED_MODELS}
    assert set(listed) == {"gpt-vision", "aiml-vision", "inspect"} | family
    assert listed["gpt-vision"].owned_by == "openai"
    assert listed["aiml/vision-small"].owned_by == "aimlapi"
    assert listed["inspect"].owned_by == "inspect"
    assert all(model.object == "model" for model in listed.values())


def test_models_never_lists_a_family_pattern_as_a_model_id(gateway: str) -> None:
    """A `prefix/*` route is described apart from the ids, so no client picks `*` as a
    model; its members are the ids its upstream's own `GET /models` lists."""
    listing = httpx.get(f"{gateway}/v1/models").json()

    assert not [model["id"] for model in listing["data"] if "*" in model["id"]]
    families = {family["pattern"]: family for family in listing["x_gateway"]["families"]}
    assert set(families) == {"fake/*", "aiml/*"}
    assert families["aiml/*"]["owned_by"] == "aimlapi"
    assert families["fake/*"]["listed"] == len(LISTED_MODELS)


def test_models_retrieve(client: openai.OpenAI) -> None:
    assert client.models.retrieve("aiml-vision").owned_by == "aimlapi"
    assert client.models.retrieve("fake/*").owned_by == "openai"
    for absent in ("needs-key", "no-such-model"):
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve(absent)


def test_request_id_is_echoed(http: httpx.Client) -> None:
    for path in ("/health", "/v1/models", "/v1/no-such-endpoint"):
        response = http.get(path, headers={"x-request-id": "trace-4711"})
        assert response.headers["x-request-id"] == "trace-4711"
    response = http.post(
        "/v1/chat/completions",
        json=inspect_request(stream=True),
        headers={"x-request-id": "trace-4712"},
    )
    assert response.headers["x-request-id"] == "trace-4712"


def test_request_id_is_made_when_absent(http: httpx.Client) -> None:
    first = http.post("/v1/chat/completions", json=inspect_request())
    second = http.post("/v1/chat/completions", json=inspect_request())

    assert first.headers["x-request-id"]
    assert second.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_overhead_header_leaves_out_upstream_time(
    http: httpx.Client, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("deliberate", Reply(delay_s=0.3))

    response = http.post("/v1/chat/completions", json=chat_request("fake/deliberate"))

    assert response.status_code == 200
    overhead_ms = float(response.headers["x-gateway-overhead-ms"])
    assert 0 <= overhead_ms < 150


def test_chat_completions_is_also_served_without_the_v1_prefix(http: httpx.Client) -> None:
    response = http.post("/chat/completions", json=inspect_request())

    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"


def test_playground_page(http: httpx.Client) -> None:
    response = http.get("/playground")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_playground_can_be_turned_off(start_gateway: StartGateway) -> None:
    gateway = start_gateway(
        [{"name": "inspect", "provider": "inspect"}], server={"playground": False}
    )

    assert_error(httpx.get(f"{gateway}/playground"), 404, "invalid_request_error", "not_found")


def test_operator_endpoints_need_no_gateway_key(start_gateway: StartGateway) -> None:
    gateway = start_gateway(
        [{"name": "inspect", "provider": "inspect"}], server={"api_keys": ["gw-key"]}
    )

    for path in ("/health", "/ready", "/metrics"):
        assert httpx.get(f"{gateway}{path}").status_code == 200, path
    assert_error(httpx.get(f"{gateway}/v1/models"), 401, "authentication_error", "invalid_api_key")
    listed = httpx.get(f"{gateway}/v1/models", headers={"authorization": "Bearer gw-key"})
    assert [model["id"] for model in listed.json()["data"]] == ["inspect"]
