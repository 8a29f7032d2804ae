"""Chunks and completions in the shapes OpenAI's API reference documents, byte for byte where
the gateway makes them: the fields OpenAI sends, in its order, and nothing OpenAI leaves out
(no `"role": null` or `"content": null` in a delta, no `usage` but in the usage chunk)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.deployments import inspect_request, user_message
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply

pytestmark = pytest.mark.e2e

# The API reference's examples: the chat completion chunk object (a stream's first, middle and
# last chunk), the usage chunk `stream_options.include_usage` adds, and the chat completion
# object. `system_fingerprint`, `service_tier` and the usage details are the upstream's to
# tell: the gateway sends them when the upstream does.
ROLE_CHUNK: dict[str, Any] = {
    "id": "chatcmpl-123",
    "object": "chat.completion.chunk",
    "created": 1694268190,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
    ],
}
CONTENT_CHUNK = {
    **ROLE_CHUNK,
    "choices": [{**ROLE_CHUNK["choices"][0], "delta": {"content": "Hello"}}],
}
FINISH_CHUNK = {
    **ROLE_CHUNK,
    "choices": [{**ROLE_CHUNK["choices"][0], "delta": {}, "finish_reason": "stop"}],
}
USAGE_CHUNK = {
    **ROLE_CHUNK,
    "choices": [],
    "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
}
COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "The image shows a wooden boardwalk.",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 1117,
        "completion_tokens": 46,
        "total_tokens": 1163,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}
UPSTREAMS_TO_TELL = ("system_fingerprint", "service_tier")
COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def like(documented: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The documented object with the values the gateway sent for this answer (ids, times,
    text, counts), the upstream's own fields left out."""
    shaped = {key: value for key, value in documented.items() if key not in UPSTREAMS_TO_TELL}
    shaped.update(id=sent["id"], created=sent["created"], model=sent["model"])
    shaped["choices"] = [
        _choice_like(choice, sent["choices"][index])
        for index, choice in enumerate(documented["choices"])
    ]
    if "usage" in shaped:
        shaped["usage"] = {key: sent["usage"][key] for key in COUNTS}
    return shaped


def _choice_like(documented: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    choice = {**documented, "finish_reason": sent["finish_reason"]}
    if "content" in documented.get("delta", {}):
        choice["delta"] = {**documented["delta"], "content": sent["delta"]["content"]}
    if "message" in documented:
        choice["message"] = {**documented["message"], "content": sent["message"]["content"]}
    return choice


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def data_lines(body: str) -> list[str]:
    return [line.removeprefix("data: ") for line in body.split("\n\n") if line.startswith("data: ")]


@pytest.mark.parametrize("include_usage", [False, True])
def test_the_gateways_own_chunks_are_openais_byte_for_byte(
    http: httpx.Client, include_usage: bool
) -> None:
    options = {"stream_options": {"include_usage": True}} if include_usage else {}

    response = http.post("/v1/chat/completions", json=inspect_request(stream=True, **options))

    *events, done = data_lines(response.text)
    assert done == "[DONE]"
    if include_usage:
        *events, usage = events
        assert usage == compact(like(USAGE_CHUNK, json.loads(usage)))
    role, *contents, finish = events
    assert role == compact(like(ROLE_CHUNK, json.loads(role)))
    assert contents
    for content in contents:
        assert content == compact(like(CONTENT_CHUNK, json.loads(content)))
    assert finish == compact(like(FINISH_CHUNK, json.loads(finish)))


def test_the_gateways_own_completion_is_openais_byte_for_byte(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=inspect_request())

    assert response.text == compact(like(COMPLETION, response.json()))


@pytest.mark.parametrize("include_usage", [False, True])
def test_relayed_chunks_keep_the_upstreams_fields_and_add_no_nulls(
    http: httpx.Client, openai_upstream: FakeUpstream, include_usage: bool
) -> None:
    # The fake sends what OpenAI sends: `system_fingerprint`, `logprobs: null`, `usage: null`.
    openai_upstream.script("upstream-vision", Reply(deltas=["Hel", "lo"]))
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    body = {"model": "gpt-vision", "messages": user_message(), "stream": True, **options}

    response = http.post("/v1/chat/completions", json=body)

    *events, done = data_lines(response.text)
    assert done == "[DONE]"
    chunks = [json.loads(event) for event in events]
    if include_usage:
        *chunks, usage = chunks
        assert set(usage) == {*USAGE_CHUNK, "system_fingerprint"}
        assert usage["choices"] == []
    role, *contents, finish = chunks
    assert role == like(ROLE_CHUNK, role)  # made by the gateway: the upstream's role is dropped
    for content in contents:
        assert content == {**like(CONTENT_CHUNK, content), "system_fingerprint": "fp_fake"}
    assert finish == {**like(FINISH_CHUNK, finish), "system_fingerprint": "fp_fake"}
