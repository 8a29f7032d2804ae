"""Assertions on the gateway's OpenAI-style error envelope."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from tests.e2e.deployments import UPSTREAM_KEYS

_UNSET: Any = object()


def assert_error(
    response: httpx.Response, status: int, type_: str, code: str | None, param: Any = _UNSET
) -> dict[str, Any]:
    """The response is `status` with exactly OpenAI's envelope; returns the inner error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    for key in UPSTREAM_KEYS:
        assert key not in response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["type"] == type_
    assert error["code"] == code
    if param is not _UNSET:
        assert error["param"] == param
    return error


def stream_until_error(
    client: openai.OpenAI, **request: Any
) -> tuple[list[ChatCompletionChunk], openai.APIError]:
    """Stream `request` to its in-stream error: the chunks before it, and what the SDK raised."""
    received: list[ChatCompletionChunk] = []
    stream = client.chat.completions.create(stream=True, **request)
    with stream, pytest.raises(openai.APIError) as raised:
        received.extend(stream)
    return received, raised.value
