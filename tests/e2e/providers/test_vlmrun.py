"""VLM Run through the gateway: the domain, the prompt and schema, images never mixed, the
prediction polled until completed, its JSON as the answer, listed domains, and failures."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import anyio
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.clients import async_sdk, sdk
from tests.e2e.conftest import StartGateway
from tests.e2e.deployments import png_bytes
from tests.e2e.envelope import assert_error, stream_until_error
from tests.e2e.providers.deployments import VLMRUN_KEY, ask, data_uri, vlmrun_entry
from tests.e2e.providers.fakes import FakeVLMRun, ImageHost, VLMPrediction

pytestmark = pytest.mark.e2e

INVOICE = {"invoice_id": "INV-0042", "total": 129.5, "currency": "EUR", "items": [{"qty": 2}]}
SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {"invoice_id": {"type": "string"}, "total": {"type": "number"}},
    "required": ["invoice_id", "total"],
}


def post(gateway: str, model: str, messages: object, **fields: object) -> httpx.Response:
    body = {"model": model, "messages": messages, **fields}
    return httpx.post(f"{gateway}/v1/chat/completions", json=body, timeout=10)


def generated(fake: FakeVLMRun) -> dict[str, Any]:
    """The one `/image/generate` body the fake received."""
    [request] = fake.requests("POST", "/v1/image/generate")
    assert request.headers["authorization"] == f"Bearer {VLMRUN_KEY}"
    body: dict[str, Any] = request.json
    return body


def decoded(uri: str) -> bytes:
    assert uri.startswith("data:image/png;base64,"), uri[:40]
    return base64.b64decode(uri.partition(",")[2])


# The request VLM Run gets


def test_the_domain_comes_from_the_options(vlmrun_gateway: str, vlmrun: FakeVLMRun) -> None:
    vlmrun.script(VLMPrediction(response=INVOICE))
    image = data_uri(png_bytes(32, 24, "white"))

    with sdk(vlmrun_gateway) as client:
        completion = client.chat.completions.create(
            model="vlm-invoice", messages=ask("Extract the invoice.", image)
        )

    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == INVOICE
    assert completion.model == "vlm-invoice"
    body = generated(vlmrun)
    assert body["model"] == "vlm-1"
    assert body["domain"] == "document.invoice"
    assert body["batch"] is False
    assert body["images"] == [image]
    assert body["config"]["prompt"] == "Extract the invoice."
    assert vlmrun.polls == []


def test_a_data_uri_goes_on_with_its_real_type(vlmrun_gateway: str, vlmrun: FakeVLMRun) -> None:
    image = png_bytes(16, 8, "green")

    with sdk(vlmrun_gateway) as client:
        client.chat.completions.create(
            model="vlm-invoice", messages=ask("Read it.", data_uri(image, "image/jpeg"))
        )

    [sent] = generated(vlmrun)["images"]
    assert decoded(sent) == image


def test_a_request_without_an_image_is_refused(vlmrun_gateway: str, vlmrun: FakeVLMRun) -> None:
    response = post(vlmrun_gateway, "vlm-invoice", [{"role": "user", "content": "Hello?"}])

    assert_error(response, 400, "invalid_request_error", "invalid_value")
    assert vlmrun.received == []


def test_the_domain_comes_from_a_wildcard_model_id(vlmrun_gateway: str, vlmrun: FakeVLMRun) -> None:
    with sdk(vlmrun_gateway) as client:
        completion = client.chat.completions.create(
            model="vlmrun/document.receipt", messages=ask("Read it.", data_uri(png_bytes(8, 8)))
        )

    assert completion.model == "vlmrun/document.receipt"
    body = generated(vlmrun)
    assert body["domain"] == "document.receipt"
    assert body["model"] == "vlm-1"


def test_a_model_without_a_domain_is_refused(vlmrun_gateway: str, vlmrun: FakeVLMRun) -> None:
    response = post(vlmrun_gateway, "vlm-nodomain", ask("Read it.", data_uri(png_bytes(8, 8))))

    error = assert_error(response, 400, "invalid_request_error", "invalid_value", param="model")
    assert "domain" in error["message"]
    assert vlmrun.received == []


def test_a_domain_the_upstream_does_not_know_is_upstream_rejected(
    vlmrun_gateway: str, vlmrun: FakeVLMRun
) -> None:
    response = post(
        vlmrun_gateway, "vlmrun/medical.xray", ask("Read it.", data_uri(png_bytes(8, 8)))
    )

    error = assert_error(response, 400, "invalid_request_error", "upstream_rejected")
    assert "unknown domain 'medical.xray'" in error["message"]
    assert VLMRUN_KEY not in response.text
    assert vlmrun.predictions == {}


def test_a_json_schema_response_format_becomes_the_config_schema(
    vlmrun_gateway: str, vlmrun: FakeVLMRun
) -> None:
    vlmrun.script(VLMPrediction(response={"invoice_id": "INV-7", "total": 3.0}))

    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Amounts in euros."},
        *ask("Only the id and the total.", data_uri(png_bytes(16, 16))),
    ]

    with sdk(vlmrun_gateway) as client:
        completion = client.chat.completions.create(
            model="vlm-invoice",
            messages=messages,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "invoice", "strict": True, "schema": SCHEMA},
            },
        )

    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {"invoice_id": "INV-7", "total": 3.0}
    config = generated(vlmrun)["config"]
    assert config["json_schema"] == SCHEMA
    assert "Amounts in euros." in config["prompt"]
    assert "Only the id and the total." in config["prompt"]


def test_urls_mixed_with_data_uris_are_fetched_and_inlined(
    vlmrun_gateway: str, vlmrun: FakeVLMRun, image_host: ImageHost
) -> None:
    fetched = png_bytes(20, 10, "red")
    url = image_host.put("page-2.png", fetched)
    inline = data_uri(png_bytes(10, 20, "blue"))

    with sdk(vlmrun_gateway) as client:
        client.chat.completions.create(
            model="vlm-invoice", messages=ask("Both pages.", inline, f"{url}?v=1")
        )

    images = generated(vlmrun)["images"]
    assert len(images) == 2
    assert images[0] == inline
    assert decoded(images[1]) == fetched
    assert image_host.fetched == ["page-2.png"]


def test_urls_alone_are_passed_on(
    vlmrun_gateway: str, vlmrun: FakeVLMRun, image_host: ImageHost
) -> None:
    urls = [image_host.put(name, png_bytes(12, 12)) for name in ("a.png", "b.png")]

    with sdk(vlmrun_gateway) as client:
        client.chat.completions.create(model="vlm-invoice", messages=ask("Both.", *urls))

    assert generated(vlmrun)["images"] == urls
    assert image_host.fetched == []


# Predictions that take a while


def test_a_batch_prediction_is_polled_until_completed(
    vlmrun_gateway: str, vlmrun: FakeVLMRun
) -> None:
    vlmrun.script(VLMPrediction(initial="enqueued", statuses=["enqueued", "running", "completed"]))

    with sdk(vlmrun_gateway) as client:
        completion = client.chat.completions.create(
            model="vlm-batch", messages=ask("Caption it.", data_uri(png_bytes(8, 8)))
        )

    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == VLMPrediction().response
    assert generated(vlmrun)["batch"] is True
    assert [poll.answer for poll in vlmrun.polls] == ["enqueued", "running", "completed"]


def test_a_paused_prediction_is_polled_until_it_completes(
    vlmrun_gateway: str, vlmrun: FakeVLMRun
) -> None:
    vlmrun.script(
        VLMPrediction(
            initial="running",
            statuses=["running", "paused", "paused", "paused", "completed"],
            response=INVOICE,
        )
    )

    response = post(vlmrun_gateway, "vlm-invoice", ask("Go on.", data_uri(png_bytes(8, 8))))

    assert response.status_code == 200, response.text
    assert json.loads(response.json()["choices"][0]["message"]["content"]) == INVOICE
    assert [poll.answer for poll in vlmrun.polls][-2:] == ["paused", "completed"]
    assert len(vlmrun.polls) == 5


@pytest.mark.anyio
async def test_the_answer_carries_the_credits_used(vlmrun_gateway: str, vlmrun: FakeVLMRun) -> None:
    vlmrun.script(VLMPrediction(initial="enqueued", statuses=["completed"], credits_used=7))

    async with async_sdk(vlmrun_gateway) as client:
        completion = await client.chat.completions.create(
            model="vlmrun/image.caption", messages=ask("Caption.", data_uri(png_bytes(8, 8)))
        )

    [prediction_id] = vlmrun.predictions
    assert completion.model_extra is not None
    assert completion.model_extra["x_gateway"] == {
        "provider": "vlmrun",
        "job_id": prediction_id,
        "domain": "image.caption",
        "credits_used": 7,
    }
    assert completion.usage is not None


def test_a_poll_that_fails_with_a_5xx_is_tried_again(
    vlmrun_gateway: str, vlmrun: FakeVLMRun
) -> None:
    vlmrun.script(
        VLMPrediction(
            initial="enqueued", statuses=["running", "running", "completed"], poll_errors={2: 502}
        )
    )

    response = post(vlmrun_gateway, "vlm-invoice", ask("Go.", data_uri(png_bytes(8, 8))))

    assert response.status_code == 200, response.text
    assert [poll.answer for poll in vlmrun.polls] == ["running", "502", "completed"]


def test_a_prediction_the_upstream_lost_is_an_upstream_failure(
    start_gateway: StartGateway, vlmrun: FakeVLMRun
) -> None:
    """A 404 on polling is about the upstream's own job, not the client's request: an upstream
    error (5xx), not a 400 that tells the client to change what it sent."""
    entry = vlmrun_entry(vlmrun, "vlm-lost", timeout_s=1.0, options={"domain": "image.caption"})
    gateway = start_gateway([entry])
    lost = dict.fromkeys(range(2, 1000), 404)
    vlmrun.script(VLMPrediction(initial="enqueued", statuses=["running"], poll_errors=lost))

    response = post(gateway, "vlm-lost", ask("Go.", data_uri(png_bytes(8, 8))))

    assert response.status_code in (502, 504), response.text
    assert response.json()["error"]["type"] == "upstream_error"
    assert "404" in [poll.answer for poll in vlmrun.polls]


# Streams


@pytest.mark.anyio
async def test_a_stream_starts_before_the_prediction_completes(
    vlmrun_gateway: str, vlmrun: FakeVLMRun
) -> None:
    vlmrun.script(
        VLMPrediction(
            initial="enqueued", statuses=["running"] * 8 + ["completed"], response=INVOICE
        )
    )
    arrivals: list[tuple[float, openai.types.chat.ChatCompletionChunk]] = []

    async with async_sdk(vlmrun_gateway) as client:
        stream = await client.chat.completions.create(
            model="vlm-invoice",
            messages=ask("Extract.", data_uri(png_bytes(8, 8))),
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            arrivals.extend([(time.monotonic(), chunk) async for chunk in stream])

    completed_at = vlmrun.polls[-1].at
    assert vlmrun.polls[-1].answer == "completed"
    (role_at, role), *_ = arrivals
    assert role.choices[0].delta.role == "assistant"
    assert role_at < completed_at - 0.2
    chunks = [chunk for _, chunk in arrivals]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == INVOICE
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None


@pytest.mark.anyio
async def test_an_async_client_that_goes_away_stops_the_polling(
    vlmrun_gateway: str, vlmrun: FakeVLMRun
) -> None:
    vlmrun.script(VLMPrediction(initial="enqueued", statuses=["running"]))

    async with async_sdk(vlmrun_gateway) as client:
        stream = await client.chat.completions.create(
            model="vlm-invoice", messages=ask("Extract.", data_uri(png_bytes(8, 8))), stream=True
        )
        await anext(aiter(stream))
        for _ in range(200):
            if len(vlmrun.polls) >= 3:
                break
            await anyio.sleep(0.01)
        await stream.close()
    closed_at = time.monotonic()

    await anyio.sleep(1.0)
    settled = len(vlmrun.polls)
    await anyio.sleep(0.3)

    assert len(vlmrun.polls) == settled, "polling went on after the client left"
    assert vlmrun.polls[-1].at < closed_at + 1.0


# Failures


def test_a_failed_prediction_is_job_failed_with_the_upstream_reason(
    vlmrun_gateway: str, vlmrun: FakeVLMRun
) -> None:
    vlmrun.script(
        VLMPrediction(
            initial="enqueued", statuses=["running", "failed"], failure="document unreadable"
        )
    )

    response = post(vlmrun_gateway, "vlm-invoice", ask("Extract.", data_uri(png_bytes(8, 8))))

    error = assert_error(response, 502, "upstream_error", "job_failed")
    assert "document unreadable" in error["message"]


def test_a_prediction_that_fails_mid_stream_ends_with_an_error_event(
    vlmrun_gateway: str, vlmrun: FakeVLMRun
) -> None:
    vlmrun.script(
        VLMPrediction(initial="enqueued", statuses=["failed"], failure="document unreadable")
    )

    with sdk(vlmrun_gateway) as client:
        _, error = stream_until_error(
            client, model="vlm-invoice", messages=ask("Extract.", data_uri(png_bytes(8, 8)))
        )

    assert isinstance(error.body, dict)
    assert error.body["code"] == "job_failed"
    assert "document unreadable" in error.message


def test_a_prediction_past_the_deadline_is_upstream_timeout(
    start_gateway: StartGateway, vlmrun: FakeVLMRun
) -> None:
    gateway = start_gateway(
        [vlmrun_entry(vlmrun, "vlm-slow", timeout_s=0.5, options={"domain": "image.caption"})]
    )
    vlmrun.script(VLMPrediction(initial="enqueued", statuses=["running"]))
    started = time.monotonic()

    response = post(gateway, "vlm-slow", ask("Caption.", data_uri(png_bytes(8, 8))))

    assert_error(response, 504, "upstream_error", "upstream_timeout")
    assert time.monotonic() - started < 1.5


def test_a_refused_key_is_upstream_auth_failed(vlmrun_gateway: str, vlmrun: FakeVLMRun) -> None:
    vlmrun.refuse_key = True

    response = post(vlmrun_gateway, "vlm-invoice", ask("Extract.", data_uri(png_bytes(8, 8))))

    assert_error(response, 502, "upstream_error", "upstream_auth_failed")
    assert VLMRUN_KEY not in response.text
    assert vlmrun.predictions == {}


# Models


def test_the_model_list_names_the_upstream_domains(vlmrun_gateway: str, vlmrun: FakeVLMRun) -> None:
    with sdk(vlmrun_gateway) as client:
        models = {model.id: model for model in client.models.list()}

    for domain in ("document.invoice", "document.receipt", "image.caption"):
        assert models[f"vlmrun/{domain}"].owned_by == "vlmrun"
    assert "vlmrun/*" not in models  # a pattern is not a model id
    assert {"vlm-invoice", "vlm-batch", "vlm-nodomain"} <= set(models)
    [listing] = vlmrun.requests("GET", "/v1/domains")
    assert listing.headers["authorization"] == f"Bearer {VLMRUN_KEY}"


def test_the_model_list_survives_a_domain_listing_that_fails(
    vlmrun_gateway: str, vlmrun: FakeVLMRun
) -> None:
    vlmrun.refuse_key = True

    response = httpx.get(f"{vlmrun_gateway}/v1/models")

    assert response.status_code == 200
    ids = {model["id"] for model in response.json()["data"]}
    assert ids == {"vlm-invoice", "vlm-batch", "vlm-nodomain"}
    [family] = response.json()["x_gateway"]["families"]
    assert family == {"pattern": "vlmrun/*", "owned_by": "vlmrun", "listed": 0}
    assert VLMRUN_KEY not in response.text
