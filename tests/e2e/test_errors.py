"""The error table for requests the gateway refuses itself: status, `type`, `code` and
`param` of each, in OpenAI's envelope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import MakeClient, StartGateway
from tests.e2e.deployments import (
    chat_request,
    entry,
    inspect_message,
    inspect_request,
    user_message,
)
from tests.e2e.envelope import assert_error
from tests.e2e.fakes.openai_compat import FakeUpstream

pytestmark = pytest.mark.e2e


def test_body_that_is_not_json(http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions",
        content=b'{"model": "inspect", "messages": [',
        headers={"content-type": "application/json"},
    )

    assert_error(response, 400, "invalid_request_error", "invalid_json", param=None)


@pytest.mark.parametrize("body", [b"[]", b'["inspect"]', b'"inspect"', b"null", b"1", b"true"])
def test_json_that_is_not_an_object_is_a_schema_violation(
    client: openai.OpenAI, body: bytes
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.post(
            "/chat/completions",
            content=body,
            options={"headers": {"Content-Type": "application/json"}},
            cast_to=object,
        )

    assert raised.value.status_code == 400
    assert raised.value.body == {
        "message": "the request body must be a JSON object",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_value",
    }


def test_schema_violation_names_the_field(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=inspect_request(temperature=7))

    assert_error(response, 400, "invalid_request_error", "invalid_value", param="temperature")


def test_bad_content_part_names_the_part(http: httpx.Client) -> None:
    body = {
        "model": "inspect",
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"detail": "low"}}]}
        ],
    }

    response = http.post("/v1/chat/completions", json=body)

    error = assert_error(response, 400, "invalid_request_error", "missing_required_parameter")
    assert error["param"] == "messages[0].content[0].image_url.url"
    assert error["message"] == (
        "Missing required parameter: 'messages[0].content[0].image_url.url'."
    )


def test_a_missing_field_is_a_missing_required_parameter(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.post("/chat/completions", body={"model": "inspect"}, cast_to=object)

    assert raised.value.code == "missing_required_parameter"
    assert raised.value.param == "messages"
    assert raised.value.body == {
        "message": "Missing required parameter: 'messages'.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "missing_required_parameter",
    }


# Words of the validation library that no client should read.
LIBRARY_WORDS = (
    "Input should",
    "instance of",
    "dictionary",
    "Input tag",
    "found using",
    "pydantic",
)
CHAT_TYPE_ERRORS = [
    ({"stream": "yes"}, "stream", "expected a boolean, but got a string"),
    ({"n": "2"}, "n", "expected an integer, but got a string"),
    ({"max_tokens": 1.5}, "max_tokens", "expected an integer, but got a decimal number"),
    ({"temperature": "0.5"}, "temperature", "expected a number, but got a string"),
    ({"logprobs": "yes"}, "logprobs", "expected a boolean, but got a string"),
    ({"parallel_tool_calls": 1}, "parallel_tool_calls", "expected a boolean, but got an integer"),
    ({"metadata": {"team": 7}}, "metadata.team", "expected a string, but got an integer"),
    ({"user": 42}, "user", "expected a string, but got an integer"),
    ({"stream_options": "usage"}, "stream_options", "expected an object, but got a string"),
    (
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]},
        "messages[0].content[0].image_url",
        "expected an object, but got a string",
    ),
]


@pytest.mark.parametrize(("fields", "param", "words"), CHAT_TYPE_ERRORS)
def test_a_field_of_the_wrong_type_is_refused_before_anything_is_sent(
    client: openai.OpenAI,
    openai_upstream: FakeUpstream,
    fields: dict[str, Any],
    param: str,
    words: str,
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="gpt-vision", messages=user_message(), extra_body=fields
        )

    assert raised.value.code == "invalid_type"
    assert raised.value.param == param
    assert raised.value.body == {
        "message": f"Invalid type for '{param}': {words} instead.",
        "type": "invalid_request_error",
        "param": param,
        "code": "invalid_type",
    }
    assert openai_upstream.received == []


@pytest.mark.parametrize(
    ("message", "param", "text"),
    [
        (
            {"role": "bot", "content": "Hi."},
            "messages[0].role",
            "Invalid value: 'bot'. Supported values are: 'system', 'developer', 'user', "
            "'assistant', 'tool', and 'function'.",
        ),
        (
            {"role": "user", "content": [{"type": "image", "image": "x"}]},
            "messages[0].content[0].type",
            "Invalid value: 'image'. Supported values are: 'text', 'image_url', 'input_audio', "
            "'file', and 'refusal'.",
        ),
        (
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "x", "detail": "max"}}],
            },
            "messages[0].content[0].image_url.detail",
            "Invalid value: 'max'. Supported values are: 'auto', 'low', and 'high'.",
        ),
    ],
)
def test_a_value_not_allowed_is_refused_listing_the_allowed_ones(
    client: openai.OpenAI, message: Any, param: str, text: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="inspect", messages=[message])

    assert (raised.value.code, raised.value.param) == ("invalid_value", param)
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["message"] == text
    assert not any(word in text for word in LIBRARY_WORDS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        ("logprobs", True),
    ],
)
def test_field_the_provider_cannot_honour(http: httpx.Client, field: str, value: Any) -> None:
    response = http.post("/v1/chat/completions", json=inspect_request(**{field: value}))

    assert_error(response, 400, "invalid_request_error", "unsupported_parameter", param=field)


@pytest.fixture
def small_gateway(start_gateway: StartGateway) -> str:
    return start_gateway(
        [{"name": "inspect", "provider": "inspect"}], server={"max_request_bytes": 2048}
    )


def test_body_over_max_request_bytes(small_gateway: str) -> None:
    body = inspect_request(user="x" * 4096)

    response = httpx.post(f"{small_gateway}/v1/chat/completions", json=body)

    assert_error(response, 413, "invalid_request_error", "request_too_large")


def test_chunked_body_over_max_request_bytes(small_gateway: str) -> None:
    def pieces() -> Iterator[bytes]:
        yield b'{"model": "inspect", "user": "'
        yield b"x" * 4096
        yield b'", "messages": [{"role": "user", "content": "hi"}]}'

    response = httpx.post(f"{small_gateway}/v1/chat/completions", content=pieces())

    assert_error(response, 413, "invalid_request_error", "request_too_large")


@pytest.fixture
def keyed_gateway(start_gateway: StartGateway, openai_upstream: FakeUpstream) -> str:
    keys = ["gw-admin-key", {"key": "gw-team-key", "name": "team-a", "models": ["inspect"]}]
    return start_gateway(
        [{"name": "inspect", "provider": "inspect"}, entry("fake/*", openai_upstream)],
        server={"api_keys": keys},
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong-key"}, {"authorization": "Basic Z3ctYWRtaW4ta2V5"}],
)
def test_missing_or_wrong_gateway_key(keyed_gateway: str, headers: dict[str, str]) -> None:
    response = httpx.post(
        f"{keyed_gateway}/v1/chat/completions", json=inspect_request(), headers=headers
    )

    assert_error(response, 401, "authentication_error", "invalid_api_key")


def test_wrong_gateway_key_through_the_sdk(keyed_gateway: str, make_client: MakeClient) -> None:
    with pytest.raises(openai.AuthenticationError) as raised:
        make_client(keyed_gateway).chat.completions.create(
            model="inspect", messages=inspect_message()
        )

    assert raised.value.code == "invalid_api_key"
    assert (
        make_client(keyed_gateway, "gw-admin-key")
        .chat.completions.create(model="inspect", messages=inspect_message())
        .model
        == "inspect"
    )


def test_key_not_allowed_this_model(keyed_gateway: str, make_client: MakeClient) -> None:
    headers = {"authorization": "Bearer gw-team-key"}

    response = httpx.post(
        f"{keyed_gateway}/v1/chat/completions", json=chat_request("fake/anything"), headers=headers
    )

    assert_error(response, 403, "permission_error", "model_not_allowed", param="model")
    with pytest.raises(openai.PermissionDeniedError):
        make_client(keyed_gateway, "gw-team-key").chat.completions.create(
            model="fake/anything", messages=user_message()
        )
    allowed = httpx.post(
        f"{keyed_gateway}/v1/chat/completions", json=inspect_request(), headers=headers
    )
    assert allowed.status_code == 200


def test_gateway_rate_limit_per_model(
    start_gateway: StartGateway, openai_upstream: FakeUpstream
) -> None:
    gateway = start_gateway([entry("vision", openai_upstream, rpm=2)])
    url = f"{gateway}/v1/chat/completions"

    statuses = [httpx.post(url, json=chat_request("vision")).status_code for _ in range(2)]
    response = httpx.post(url, json=chat_request("vision"))

    assert statuses == [200, 200]
    assert_error(response, 429, "rate_limit_error", "rate_limit_exceeded")
    assert int(response.headers["retry-after"]) >= 1
    assert len(openai_upstream.received) == 2


def test_gateway_rate_limit_per_key(start_gateway: StartGateway) -> None:
    gateway = start_gateway(
        [{"name": "inspect", "provider": "inspect"}],
        server={"api_keys": [{"key": "gw-slow-key", "rpm": 1}]},
    )
    headers = {"authorization": "Bearer gw-slow-key"}
    url = f"{gateway}/v1/chat/completions"

    first = httpx.post(url, json=inspect_request(), headers=headers)
    second = httpx.post(url, json=inspect_request(), headers=headers)

    assert first.status_code == 200
    assert_error(second, 429, "rate_limit_error", "rate_limit_exceeded")
    assert int(second.headers["retry-after"]) >= 1


TOOL = {"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("path", "refused", "param"),
    [
        ("/v1/chat/completions", {**inspect_request(), "tools": [TOOL]}, "tools"),
        ("/v1/responses", {"model": "inspect", "input": "Hi.", "background": True}, "background"),
    ],
)
def test_a_key_past_its_rate_hears_that_before_what_else_is_wrong(
    start_gateway: StartGateway, path: str, refused: dict[str, Any], param: str
) -> None:
    gateway = start_gateway(
        [{"name": "inspect", "provider": "inspect"}],
        server={"api_keys": [{"key": "gw-slow-key", "rpm": 1}]},
    )
    headers = {"authorization": "Bearer gw-slow-key"}

    first = httpx.post(f"{gateway}{path}", json=refused, headers=headers)
    second = httpx.post(f"{gateway}{path}", json=refused, headers=headers)

    assert_error(first, 400, "invalid_request_error", "unsupported_parameter", param=param)
    assert_error(second, 429, "rate_limit_error", "rate_limit_exceeded")


def test_unknown_model(http: httpx.Client, client: openai.OpenAI) -> None:
    response = http.post("/v1/chat/completions", json=chat_request("no-such-model"))

    assert_error(response, 404, "invalid_request_error", "model_not_found", param="model")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=user_message())


def test_model_whose_key_is_unset_names_the_variable(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat_request("needs-key"))

    error = assert_error(response, 404, "invalid_request_error", "model_not_found")
    assert "AIMLAPI_E2E_KEY" in error["message"]


def test_unknown_path(http: httpx.Client) -> None:
    error = assert_error(
        http.get("/v1/no-such-endpoint"), 404, "invalid_request_error", "not_found"
    )
    assert error["param"] is None


def test_wrong_method(http: httpx.Client) -> None:
    assert_error(
        http.get("/v1/chat/completions"), 405, "invalid_request_error", "method_not_allowed"
    )
