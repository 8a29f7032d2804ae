"""Image parts: what `inspect` reads from images, and the gateway's image errors."""

from __future__ import annotations

import base64

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.conftest import StartGateway
from tests.e2e.deployments import chat_request, png_bytes, png_data_uri, user_message
from tests.e2e.envelope import assert_error
from tests.e2e.fakes.openai_compat import FakeUpstream

pytestmark = pytest.mark.e2e


def test_inspect_reads_type_and_size_of_a_data_uri_png(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="inspect",
        messages=user_message(image_url=png_data_uri(40, 30)),
    )

    text = completion.choices[0].message.content or ""
    assert "1 image(s)" in text
    assert "image/png" in text
    assert "40×30" in text
    assert completion.model == "inspect"


@pytest.mark.anyio
async def test_inspect_streams_like_any_model(async_client: openai.AsyncOpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": png_data_uri(64, 48, "blue")}},
                {"type": "image_url", "image_url": {"url": png_data_uri(20, 10, "red")}},
            ],
        }
    ]

    stream = await async_client.chat.completions.create(
        model="inspect",
        messages=messages,
        stream=True,
    )
    async with stream:
        chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert "2 image(s)" in text
    assert "image 1: data URI, image/png, 64×48" in text
    assert "image 2: data URI, image/png, 20×10" in text


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64,not*base64!",
        "data:image/png;base64," + base64.b64encode(b"these bytes are no picture").decode(),
        "data:text/plain;base64," + base64.b64encode(b"hello").decode(),
    ],
)
def test_undecodable_image(http: httpx.Client, url: str) -> None:
    response = http.post(
        "/v1/chat/completions", json=chat_request("inspect", messages=user_message(image_url=url))
    )

    assert_error(
        response,
        400,
        "invalid_request_error",
        "invalid_image",
        param="messages[0].content[1].image_url",
    )


@pytest.mark.parametrize("model", ["inspect", "fake/vision"])
def test_non_http_image_url_is_forbidden(http: httpx.Client, model: str) -> None:
    messages = user_message(image_url="ftp://files.example.invalid/cat.png")

    response = http.post("/v1/chat/completions", json=chat_request(model, messages=messages))

    assert_error(
        response,
        400,
        "invalid_request_error",
        "image_url_forbidden",
        param="messages[0].content[1].image_url",
    )


def test_too_many_images_names_the_first_one_past_the_limit(
    http: httpx.Client, openai_upstream: FakeUpstream
) -> None:
    images = [
        {"type": "image_url", "image_url": {"url": f"https://img.example.invalid/{i}.png"}}
        for i in range(17)
    ]
    messages = [{"role": "user", "content": [{"type": "text", "text": "Compare."}, *images]}]

    response = http.post(
        "/v1/chat/completions", json=chat_request("fake/vision", messages=messages)
    )

    assert_error(
        response,
        400,
        "invalid_request_error",
        "too_many_images",
        param="messages[0].content[17].image_url",
    )
    assert openai_upstream.received == []


def test_data_uri_that_is_no_image_never_reaches_the_upstream(
    http: httpx.Client, openai_upstream: FakeUpstream
) -> None:
    url = "data:image/png;base64," + base64.b64encode(b"these bytes are no picture").decode()

    response = http.post(
        "/v1/chat/completions",
        json=chat_request("fake/vision", messages=user_message(image_url=url)),
    )

    assert_error(
        response,
        400,
        "invalid_request_error",
        "invalid_image",
        param="messages[0].content[1].image_url",
    )
    assert openai_upstream.received == []


# Images the gateway fetches itself (`fetch_remote: always`), from the fake on loopback


@pytest.fixture
def fetching_gateway(start_gateway: StartGateway) -> str:
    images = {
        "fetch_remote": "always",
        "allow_private_networks": True,
        "max_image_pixels": 10_000,
        "max_image_bytes": 4096,
    }
    return start_gateway([{"name": "inspect", "provider": "inspect"}], images=images)


def ask_inspect(gateway: str, image_url: str) -> httpx.Response:
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        json=chat_request("inspect", messages=user_message(image_url=image_url)),
    )


def test_fetched_image_is_read_from_its_bytes(
    fetching_gateway: str, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.images["cat.png"] = png_bytes(20, 10)

    response = ask_inspect(
        fetching_gateway, f"{openai_upstream.url}/images/cat.png?signature=s3cr3t"
    )

    assert response.status_code == 200, response.text
    text = response.json()["choices"][0]["message"]["content"]
    assert "image/png, 20×10" in text
    assert "s3cr3t" not in text
    assert openai_upstream.image_requests == ["cat.png"]


def test_image_that_cannot_be_fetched(fetching_gateway: str, openai_upstream: FakeUpstream) -> None:
    response = ask_inspect(
        fetching_gateway, f"{openai_upstream.url}/images/missing.png?signature=s3cr3t"
    )

    error = assert_error(
        response,
        400,
        "invalid_request_error",
        "image_fetch_failed",
        param="messages[0].content[1].image_url",
    )
    assert "s3cr3t" not in error["message"]


@pytest.mark.parametrize(("width", "height", "color"), [(200, 100, "red"), (60, 60, None)])
def test_image_over_the_pixel_or_byte_limit(
    fetching_gateway: str,
    openai_upstream: FakeUpstream,
    width: int,
    height: int,
    color: str | None,
) -> None:
    openai_upstream.images["big.png"] = png_bytes(width, height, color)

    for url in (png_data_uri(width, height, color), f"{openai_upstream.url}/images/big.png"):
        assert_error(
            ask_inspect(fetching_gateway, url),
            400,
            "invalid_request_error",
            "image_too_large",
            param="messages[0].content[1].image_url",
        )


def test_image_url_on_a_private_address_is_refused(
    start_gateway: StartGateway, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.images["cat.png"] = png_bytes(20, 10)
    gateway = start_gateway(
        [{"name": "inspect", "provider": "inspect"}], images={"fetch_remote": "always"}
    )

    response = ask_inspect(gateway, f"{openai_upstream.url}/images/cat.png")

    assert_error(
        response,
        400,
        "invalid_request_error",
        "image_url_forbidden",
        param="messages[0].content[1].image_url",
    )
    assert openai_upstream.image_requests == []


@pytest.mark.parametrize("stream", [False, True])
def test_a_large_data_uri_reaches_the_upstream_intact_with_its_length(
    client: openai.OpenAI, openai_upstream: FakeUpstream, stream: bool
) -> None:
    # About 2 MB of base64: the gateway sends such strings in windows, not built whole.
    url = png_data_uri(700, 700, color=None)
    messages: list[ChatCompletionMessageParam] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
            ],
        }
    ]

    reply = client.chat.completions.create(model="fake/vision", messages=messages, stream=stream)
    if stream:
        list(reply)

    (received,) = openai_upstream.received
    assert received.body["messages"][0]["content"][1]["image_url"]["url"] == url
    assert "transfer-encoding" not in received.headers
    assert int(received.headers["content-length"]) > len(url)
