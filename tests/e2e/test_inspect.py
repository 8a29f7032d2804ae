"""`inspect` fetches image URLs and describes them like any other image, and answers as a JSON
object when the client asks for JSON."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.conftest import MakeClient, StartGateway
from tests.e2e.deployments import png_bytes, png_data_uri, user_message
from tests.e2e.fakes.images import ImageHost

pytestmark = pytest.mark.e2e

QUESTION = "What is in this image?"
SCHEMA = {
    "name": "caption",
    "schema": {"type": "object", "properties": {"caption": {"type": "string"}}},
}


@pytest.fixture
def inspect_client(start_gateway: StartGateway, make_client: MakeClient) -> openai.OpenAI:
    """`inspect` with the default `fetch_remote: auto`; loopback image URLs allowed."""
    gateway = start_gateway(
        [{"name": "inspect", "provider": "inspect"}], images={"allow_private_networks": True}
    )
    return make_client(gateway)


def test_an_image_url_is_fetched_and_described_from_its_bytes(
    inspect_client: openai.OpenAI, image_host: ImageHost
) -> None:
    image = png_bytes(30, 20)
    url = image_host.put("photo.jpg", image, content_type="image/jpeg") + "?token=s3cr3t"

    completion = inspect_client.chat.completions.create(
        model="inspect", messages=user_message(image_url=url)
    )

    text = completion.choices[0].message.content or ""
    sha256 = hashlib.sha256(image).hexdigest()[:12]
    expected = f"image/png, 30×20, {len(image)} bytes, sha256 {sha256}, no conversion"
    assert f"image 1: URL {url.split('?')[0]}, fetched, {expected}" in text
    assert "s3cr3t" not in text
    assert image_host.fetched == ["photo.jpg"]


def test_an_image_url_that_cannot_be_fetched_is_image_fetch_failed(
    inspect_client: openai.OpenAI, image_host: ImageHost
) -> None:
    url = f"{image_host.url}/images/missing.png"

    with pytest.raises(openai.BadRequestError) as raised:
        inspect_client.chat.completions.create(
            model="inspect", messages=user_message(image_url=url)
        )

    assert isinstance(raised.value.body, dict)
    assert raised.value.body["code"] == "image_fetch_failed"
    assert raised.value.body["param"] == "messages[0].content[1].image_url"


def _two_images(url: str) -> list[ChatCompletionMessageParam]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": QUESTION},
                {"type": "image_url", "image_url": {"url": png_data_uri(40, 30)}},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


def _assert_facts(answer: str, url: str) -> None:
    facts = json.loads(answer)
    assert isinstance(facts, dict)
    assert facts["messages"] == 1
    assert facts["prompt_characters"] == len(QUESTION)
    inline, fetched = facts["images"]
    assert inline["source"] == "data_uri"
    assert (inline["mime"], inline["width"], inline["height"]) == ("image/png", 40, 30)
    assert inline["fetched"] is False
    assert fetched["source"] == "url"
    assert fetched["url"] == url
    assert fetched["fetched"] is True
    assert (fetched["mime"], fetched["width"], fetched["height"]) == ("image/png", 12, 8)
    assert fetched["bytes"] == len(png_bytes(12, 8))
    assert fetched["conversions"] == []
    assert len(fetched["sha256_prefix"]) == 12


@pytest.mark.parametrize(
    "response_format",
    [{"type": "json_object"}, {"type": "json_schema", "json_schema": SCHEMA}],
    ids=["json_object", "json_schema"],
)
def test_asked_for_json_it_answers_a_json_object_with_the_same_facts(
    inspect_client: openai.OpenAI, image_host: ImageHost, response_format: Any
) -> None:
    url = image_host.put("small.png", png_bytes(12, 8))

    completion = inspect_client.chat.completions.create(
        model="inspect", messages=_two_images(url), response_format=response_format
    )

    _assert_facts(completion.choices[0].message.content or "", url)


def test_a_streamed_json_answer_is_one_json_object(
    inspect_client: openai.OpenAI, image_host: ImageHost
) -> None:
    url = image_host.put("small.png", png_bytes(12, 8))

    stream = inspect_client.chat.completions.create(
        model="inspect",
        messages=_two_images(url),
        response_format={"type": "json_object"},
        stream=True,
    )

    _assert_facts("".join(c.choices[0].delta.content or "" for c in stream if c.choices), url)
