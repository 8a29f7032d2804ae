"""Every provider kind answers a Responses request with an image, streamed and not: the answer
is the upstream's, and the image reached the upstream in that upstream's own form."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
import pytest

from tests.e2e.deployments import png_bytes, png_data_uri
from tests.e2e.responses.conftest import Fakes
from tests.e2e.responses.helpers import QUESTION, ask

pytestmark = pytest.mark.e2e

ANSWER = "A red square on a white background."
VLM_ANSWER = {"caption": "A red square.", "tags": ["red", "square"]}


def _openai_like(kind: str) -> Callable[[Fakes, str], None]:
    def check(fakes: Fakes, url: str) -> None:
        parts = fakes[kind].received[-1].body["messages"][0]["content"]
        assert parts[1]["image_url"]["url"] == url  # passed on: this upstream fetches URLs

    return check


def _pg(fakes: Fakes, _: str) -> None:
    [(mime, data)] = fakes["predictionguard"].received[-1].images
    assert mime == "image/png"
    assert data == fakes["images"].images["square.png"][0]  # fetched and inlined


def _takeoff(fakes: Fakes, _: str) -> None:
    image = fakes["takeoff"].received[-1].part("image_data")
    assert image.data == fakes["images"].images["square.png"][0]  # sent as multipart


def _mpx(fakes: Fakes, _: str) -> None:
    [stored] = fakes["masterpiecex"].objects.values()  # uploaded to its storage
    assert stored.data == fakes["images"].images["square.png"][0]
    [query] = fakes["masterpiecex"].requests("POST", "/v2/llm/image_query")
    assert query.json["userPrompt"] == QUESTION


def _vlmrun(fakes: Fakes, url: str) -> None:
    [generate] = fakes["vlmrun"].requests("POST", "/v1/image/generate")
    assert generate.json["images"] == [url]
    assert generate.json["domain"] == "image.caption"


def _inspect(_: Fakes, __: str) -> None:
    pass  # nothing upstream: its answer says what it saw


CASES: dict[str, tuple[Callable[[str], bool], Callable[[Fakes, str], None]]] = {
    "openai": (lambda text: text == ANSWER, _openai_like("openai")),
    "aimlapi": (lambda text: text == ANSWER, _openai_like("aimlapi")),
    "predictionguard": (lambda text: text == ANSWER, _pg),
    "takeoff": (lambda text: text == "A red square.", _takeoff),
    "masterpiecex": (lambda text: text == ANSWER, _mpx),
    "vlmrun": (lambda text: json.loads(text) == VLM_ANSWER, _vlmrun),
    "inspect": (lambda text: "1 image(s)" in text and "/images/square.png" in text, _inspect),
}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("model", list(CASES))
def test_every_provider_answers_with_an_image(
    sync_client: openai.OpenAI, fakes: Fakes, model: str, stream: bool
) -> None:
    url = fakes["images"].put("square.png", png_bytes(16, 12))
    expected, reached_upstream = CASES[model]
    request: dict[str, Any] = {"model": model, "input": ask(QUESTION, url)}

    if stream:
        with sync_client.responses.stream(**request) as events:
            types = [event.type for event in events]
            response = events.get_final_response()
        assert types[0] == "response.created"
        assert types[-1] == "response.completed"
        assert "response.output_text.delta" in types
    else:
        response = sync_client.responses.create(**request)

    assert response.status == "completed"
    assert response.model == model
    assert expected(response.output_text), response.output_text
    assert response.usage is not None
    reached_upstream(fakes, url)
    assert sync_client.responses.retrieve(response.id).output_text == response.output_text


@pytest.mark.parametrize("model", ["masterpiecex", "vlmrun"])
def test_job_providers_facts_are_in_x_gateway(
    sync_client: openai.OpenAI, fakes: Fakes, model: str
) -> None:
    url = fakes["images"].put("square.png", png_bytes(16, 12))

    response = sync_client.responses.create(model=model, input=ask(QUESTION, url))

    facts = (response.model_extra or {})["x_gateway"]
    assert facts["provider"] == model
    assert facts["job_id"]
    if model == "masterpiecex":
        assert facts["balance"] == 1234
        assert facts["processing_time_s"] == 3.2
    else:
        assert facts["credits_used"] == 100
        assert facts["domain"] == "image.caption"


@pytest.mark.parametrize("source", ["data-uri", "url"])
@pytest.mark.parametrize("model", list(CASES))
def test_a_one_pixel_image_is_an_image_for_every_provider(
    sync_client: openai.OpenAI, fakes: Fakes, model: str, source: str
) -> None:
    pixel = png_bytes(1, 1)
    url = fakes["images"].put("pixel.png", pixel) if source == "url" else png_data_uri(1, 1)
    content: list[Any] = [
        {"type": "text", "text": QUESTION},
        {"type": "image_url", "image_url": {"url": url}},
    ]

    completion = sync_client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}]
    )
    response = sync_client.responses.create(model=model, input=ask(QUESTION, url))

    assert completion.choices[0].message.content
    assert response.status == "completed"
    if model == "inspect":
        assert "1×1" in completion.choices[0].message.content
        assert "1×1" in response.output_text
