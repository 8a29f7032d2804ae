"""Non-streamed completions through the SDK: what the client gets and what the upstream got."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam

from tests.e2e.deployments import AIMLAPI_KEY, IMAGE_URL, OPENAI_KEY, png_data_uri, user_message
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply

pytestmark = pytest.mark.e2e

TOOLS: list[ChatCompletionFunctionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "label_image",
            "description": "Give the image a short label.",
            "parameters": {
                "type": "object",
                "properties": {"label": {"type": "string"}},
                "required": ["label"],
            },
        },
    }
]


def test_openai_completion_answers_as_the_client_model(
    client: openai.OpenAI, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("upstream-vision", Reply(text="A tabby cat on a sofa.", usage=(31, 6)))

    completion = client.chat.completions.create(model="gpt-vision", messages=user_message())

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-vision"
    [choice] = completion.choices
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == "A tabby cat on a sofa."
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        completion.usage.total_tokens,
    ) == (31, 6, 37)


def test_openai_request_is_relayed_with_upstream_model_and_key(
    client: openai.OpenAI, openai_upstream: FakeUpstream
) -> None:
    messages = user_message()

    completion = client.chat.completions.create(
        model="gpt-vision",
        messages=messages,
        tools=TOOLS,
        tool_choice="auto",
        response_format={"type": "json_object"},
        n=2,
        stop=["\n\n", "END"],
        temperature=0.2,
        max_tokens=64,
    )

    assert [choice.index for choice in completion.choices] == [0, 1]
    [sent] = openai_upstream.received
    assert sent.path == "/v1/chat/completions"
    assert sent.model == "upstream-vision"
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert sent.body["messages"] == messages
    image_part = {"type": "image_url", "image_url": {"url": IMAGE_URL, "detail": "low"}}
    assert sent.body["messages"][0]["content"][1] == image_part
    assert sent.body["tools"] == TOOLS
    assert sent.body["tool_choice"] == "auto"
    assert sent.body["response_format"] == {"type": "json_object"}
    assert sent.body["n"] == 2
    assert sent.body["stop"] == ["\n\n", "END"]
    assert sent.body["temperature"] == 0.2
    assert sent.body["max_tokens"] == 64
    assert not sent.body.get("stream")


@pytest.mark.anyio
async def test_aimlapi_201_reply_is_a_completion(
    async_client: openai.AsyncOpenAI, aimlapi_upstream: FakeUpstream
) -> None:
    aimlapi_upstream.script("upstream-aiml-vision", Reply(text="Two dogs.", usage=(20, 2)))
    messages = user_message(image_url=png_data_uri(8, 6))

    completion = await async_client.chat.completions.create(
        model="aiml-vision",
        messages=messages,
        response_format={"type": "json_object"},
        stop="\n",
    )

    assert completion.model == "aiml-vision"
    assert completion.choices[0].message.content == "Two dogs."
    assert completion.usage is not None
    assert completion.usage.total_tokens == 22
    [sent] = aimlapi_upstream.received
    assert sent.model == "upstream-aiml-vision"
    assert sent.headers["authorization"] == f"Bearer {AIMLAPI_KEY}"
    assert sent.body["messages"] == messages
    assert sent.body["response_format"] == {"type": "json_object"}
    assert sent.body["stop"] == "\n"


@pytest.mark.anyio
async def test_wildcard_route_answers_async(
    async_client: openai.AsyncOpenAI, openai_upstream: FakeUpstream
) -> None:
    completion = await async_client.chat.completions.create(
        model="fake/llava-13b",
        messages=user_message(),
    )

    assert completion.model == "fake/llava-13b"
    assert completion.choices[0].message.content == Reply().text
    assert [request.model for request in openai_upstream.received] == ["llava-13b"]


def test_usage_is_present_when_the_upstream_sends_none(
    client: openai.OpenAI, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("uncounted", Reply(usage=None))

    completion = client.chat.completions.create(model="fake/uncounted", messages=user_message())

    assert completion.usage is not None
    assert completion.usage.prompt_tokens >= 0
    assert completion.usage.completion_tokens >= 0
