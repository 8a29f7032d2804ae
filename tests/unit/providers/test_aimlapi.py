"""AI/ML API: OpenAI's wire format, its own error body, and 201 for success."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import respx

from app.config import ImagesConfig
from app.errors import GatewayError, UpstreamAuthFailed, UpstreamRateLimited, UpstreamRejected
from app.providers.aimlapi import AIMLAPI
from app.providers.base import Call, ProviderContext
from app.state import MemoryState
from tests.conftest import make_config
from tests.unit.conftest import chat_request
from tests.unit.seam import answer, chunks_of

pytestmark = [pytest.mark.anyio, pytest.mark.respx(base_url="https://api.aimlapi.com/v1")]

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
COMPLETION = {
    "id": "chatcmpl-aiml",
    "object": "chat.completion",
    "created": 1741677207,
    "model": "meta-llama/Llama-3.2-11B-Vision-Instruct-Turbo",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "A dog."}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23},
}


def aiml_error(status: int, message: str) -> httpx.Response:
    body = {
        "message": message,
        "path": "/v1/chat/completions",
        "requestId": "798b860e-1f4b-4c3e-9d5e",
        "statusCode": str(status),
        "timestamp": "2025-03-11T07:13:27.813Z",
    }
    return httpx.Response(status, json=body)


def provider(transport: httpx.AsyncBaseTransport, **entry: Any) -> AIMLAPI:
    model = {"name": "aimlapi/*", "provider": "aimlapi", "api_key": "aiml-key", **entry}
    context = ProviderContext(transport, ImagesConfig(), MemoryState())
    return AIMLAPI(make_config([model]).models[0], context)


def call(**fields: Any) -> Call:
    request = chat_request([{"type": "text", "text": "What breed?"}, IMAGE], **fields)
    request = request.model_copy(update={"model": "aimlapi/llama-vision"})
    return Call(request, "meta-llama/Llama-3.2-11B-Vision-Instruct-Turbo", variant="llama-vision")


def test_it_needs_a_key() -> None:
    assert AIMLAPI.capabilities.needs_api_key


async def test_request_goes_to_the_default_base_url_with_the_key(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post("/chat/completions").mock(
        return_value=httpx.Response(200, json=COMPLETION)
    )

    await answer(provider(transport), call(max_tokens=300))

    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer aiml-key"
    body = orjson.loads(request.content)
    assert body["model"] == "meta-llama/Llama-3.2-11B-Vision-Instruct-Turbo"
    assert body["max_tokens"] == 300
    assert body["messages"][0]["content"][1] == IMAGE


async def test_created_status_is_a_success(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("/chat/completions").mock(return_value=httpx.Response(201, json=COMPLETION))

    completion = await answer(provider(transport), call())

    assert completion.choices[0].message.content == "A dog."
    assert completion.model == "aimlapi/llama-vision"
    assert completion.usage.total_tokens == 23


@pytest.mark.parametrize(
    ("status", "message", "error_class"),
    [
        (400, "Body validation error!", UpstreamRejected),
        (401, "Invalid API key", UpstreamAuthFailed),
        (403, "You are out of credits", UpstreamAuthFailed),
        (404, "Model not found", UpstreamRejected),
        (429, "Free-tier limit: upgrade your plan", UpstreamRateLimited),
    ],
)
async def test_its_error_body_is_mapped(
    transport: httpx.AsyncBaseTransport,
    respx_mock: respx.MockRouter,
    status: int,
    message: str,
    error_class: type[GatewayError],
) -> None:
    respx_mock.post("/chat/completions").mock(return_value=aiml_error(status, message))

    with pytest.raises(GatewayError) as caught:
        await answer(provider(transport), call())

    assert type(caught.value) is error_class
    if error_class is not UpstreamAuthFailed:
        assert message in caught.value.message
    assert "requestId" not in caught.value.message
    assert "aiml-key" not in caught.value.message


async def test_stream_is_relayed_with_usage(
    transport: httpx.AsyncBaseTransport, respx_mock: respx.MockRouter
) -> None:
    def event(payload: dict[str, Any]) -> bytes:
        base = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "llama"}
        return b"data: " + orjson.dumps({**base, **payload}) + b"\n\n"

    body = b"".join(
        [
            event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "A"}}]}),
            event({"choices": [{"index": 0, "delta": {"content": " dog."}}]}),
            event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            event({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 2}}),
            b"data: [DONE]\n\n",
        ]
    )
    route = respx_mock.post("/chat/completions").mock(
        return_value=httpx.Response(
            201, content=body, headers={"content-type": "text/event-stream; charset=utf-8"}
        )
    )

    chunks = [chunk async for chunk in chunks_of(provider(transport), call(stream=True))]

    assert orjson.loads(route.calls.last.request.content)["stream_options"] == {
        "include_usage": True
    }
    assert [c.choices[0].delta.content for c in chunks[:3]] == ["", "A", " dog."]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 2
    assert {c.model for c in chunks} == {"aimlapi/llama-vision"}
