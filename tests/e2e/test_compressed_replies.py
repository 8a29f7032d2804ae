"""Upstreams that compress their replies although the gateway asks for them uncompressed:
gzip and deflate are unpacked (a window at a time, see the hostile tests for bombs), anything
else or a broken packing is a 502 `upstream_failed`."""

from __future__ import annotations

import gzip

import httpx
import openai
import pytest

from tests.e2e.deployments import chat_request, user_message
from tests.e2e.envelope import assert_error
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply

pytestmark = pytest.mark.e2e
TEXT = "A red square on a white background, drawn with a steady hand."


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_reply_is_unpacked(
    client: openai.OpenAI, openai_upstream: FakeUpstream, encoding: str
) -> None:
    openai_upstream.script(f"packed-{encoding}", Reply(text=TEXT, encoding=encoding))

    completion = client.chat.completions.create(
        model=f"fake/packed-{encoding}", messages=user_message()
    )

    assert completion.choices[0].message.content == TEXT
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 7


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_stream_is_unpacked_event_by_event(
    client: openai.OpenAI, openai_upstream: FakeUpstream, encoding: str
) -> None:
    openai_upstream.script(f"packed-stream-{encoding}", Reply(text=TEXT, encoding=encoding))

    stream = client.chat.completions.create(
        model=f"fake/packed-stream-{encoding}", messages=user_message(), stream=True
    )
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta]

    assert "".join(p for p in pieces if p) == TEXT
    assert len([p for p in pieces if p]) == len(TEXT.split(" "))


@pytest.mark.parametrize("stream", [False, True])
def test_a_coding_the_gateway_cannot_unpack_is_a_502(
    http: httpx.Client, openai_upstream: FakeUpstream, stream: bool
) -> None:
    openai_upstream.script("brotli", Reply(encoding="br"))

    response = http.post("/v1/chat/completions", json=chat_request("fake/brotli", stream=stream))

    assert_error(response, 502, "upstream_error", "upstream_failed")


@pytest.mark.parametrize(
    "body",
    [b"not gzip at all", gzip.compress(b'{"id": "x", "choices": []}')[:-12]],
    ids=["garbage", "cut-short"],
)
def test_a_broken_compressed_reply_is_a_502(
    http: httpx.Client, openai_upstream: FakeUpstream, body: bytes
) -> None:
    openai_upstream.script("broken", Reply(body=body, headers={"Content-Encoding": "gzip"}))

    response = http.post("/v1/chat/completions", json=chat_request("fake/broken"))

    assert_error(response, 502, "upstream_error", "upstream_failed")


def test_a_compressed_error_reply_keeps_its_message(
    http: httpx.Client, openai_upstream: FakeUpstream
) -> None:
    error = b'{"error": {"message": "the prompt is too long for this model"}}'
    packed = Reply(status=400, body=gzip.compress(error), headers={"Content-Encoding": "gzip"})
    openai_upstream.script("packed-error", packed)

    response = http.post("/v1/chat/completions", json=chat_request("fake/packed-error"))

    body = assert_error(response, 400, "invalid_request_error", "upstream_rejected")
    assert "the prompt is too long for this model" in body["message"]


def test_an_empty_reply_marked_compressed_is_read_as_empty(
    http: httpx.Client, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script(
        "empty", Reply(status=400, body=b"", headers={"Content-Encoding": "gzip"})
    )

    response = http.post("/v1/chat/completions", json=chat_request("fake/empty"))

    assert_error(response, 400, "invalid_request_error", "upstream_rejected")
