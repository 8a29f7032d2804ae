"""Random `input` item lists sent to `POST /v1/responses`: the answer is a response or a 4xx
in OpenAI's envelope, never a 500, whatever the items hold."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.deployments import png_bytes

pytestmark = pytest.mark.e2e

PNG_URI = "data:image/png;base64," + base64.b64encode(png_bytes(4, 3)).decode()
JUNK: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
IMAGE_URLS = st.sampled_from(
    [PNG_URI, "data:image/png;base64,!!!", "data:text/plain;base64,aGk=", "ftp://x/y.png",
     "http://127.0.0.1:9/a.png", "https://a..b.com/x.png", "", "not a url"]
)  # fmt: skip
PARTS = st.one_of(
    st.fixed_dictionaries({"type": st.just("input_text"), "text": st.text(max_size=20)}),
    st.fixed_dictionaries(
        {"type": st.just("input_image"), "image_url": IMAGE_URLS},
        optional={"detail": st.sampled_from(["low", "high", "auto", "huge"])},
    ),
    st.fixed_dictionaries({"type": st.just("input_image"), "file_id": st.text(max_size=8)}),
    st.fixed_dictionaries({"type": st.sampled_from(["input_file", "input_audio", "refusal"])}),
    st.fixed_dictionaries({"type": st.just("output_text"), "text": st.text(max_size=10)}),
    JUNK,
)
ITEMS = st.one_of(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", "developer", "tool", "x"]),
            "content": st.text(max_size=20) | st.lists(PARTS, max_size=3),
        },
        optional={"type": st.just("message")},
    ),
    st.fixed_dictionaries(
        {"type": st.just("function_call"), "call_id": st.text(max_size=6)},
        optional={"name": st.text(max_size=6), "arguments": st.text(max_size=10)},
    ),
    st.fixed_dictionaries(
        {"type": st.just("function_call_output"), "call_id": st.text(max_size=6)},
        optional={"output": st.text(max_size=10) | JUNK},
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["item_reference", "reasoning", "web"])}),
    JUNK,
)
INPUTS = st.text(max_size=30) | st.lists(ITEMS, max_size=5) | JUNK


@pytest.fixture(scope="module")
def http(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, timeout=10) as client:
        yield client


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(items=INPUTS, stream=st.booleans())
def test_any_input_is_a_response_or_a_client_error(
    http: httpx.Client, items: Any, stream: bool
) -> None:
    reply = http.post("/v1/responses", json={"model": "inspect", "input": items, "stream": stream})

    assert reply.status_code < 500, reply.text
    if isinstance(items, str):  # a string is always one user message
        assert reply.status_code == 200, reply.text
    if reply.status_code >= 400:
        error = reply.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
    elif stream:
        assert reply.text.startswith("event: response.created\n"), reply.text[:200]
        assert "event: response.completed\n" in reply.text
    else:
        assert reply.json()["object"] == "response"
        assert reply.json()["status"] == "completed"
