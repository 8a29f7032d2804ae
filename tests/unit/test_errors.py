"""The error taxonomy, its envelope, redaction, and validation errors turned into `param`."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from pydantic import ValidationError
from starlette.responses import Response

from app.api.endpoints import Endpoint, Endpoints, Incoming
from app.api.front import Front
from app.api.replies import error_reply
from app.errors import (
    AuthenticationFailed,
    GatewayError,
    ImageError,
    ImageFetchFailed,
    ImageTooLarge,
    ImageURLForbidden,
    InternalError,
    InvalidJSON,
    InvalidRequest,
    MethodNotAllowed,
    ModelNotAllowed,
    ModelNotFound,
    RateLimited,
    RequestTooLarge,
    RouteNotFound,
    TooManyImages,
    UnsupportedParameter,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamJobFailed,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.main import create_app
from app.observe.redaction import MAX_UPSTREAM_MESSAGE, redact, scrub
from app.wire.schemas import ChatCompletionRequest
from app.wire.validation import validation_error
from tests.conftest import make_config


@pytest.mark.parametrize(
    ("error_class", "status", "type_", "code"),
    [
        (InvalidRequest, 400, "invalid_request_error", "invalid_value"),
        (InvalidJSON, 400, "invalid_request_error", "invalid_json"),
        (UnsupportedParameter, 400, "invalid_request_error", "unsupported_parameter"),
        (ImageError, 400, "invalid_request_error", "invalid_image"),
        (ImageTooLarge, 400, "invalid_request_error", "image_too_large"),
        (TooManyImages, 400, "invalid_request_error", "too_many_images"),
        (ImageURLForbidden, 400, "invalid_request_error", "image_url_forbidden"),
        (ImageFetchFailed, 400, "invalid_request_error", "image_fetch_failed"),
        (UpstreamRejected, 400, "invalid_request_error", "upstream_rejected"),
        (RequestTooLarge, 413, "invalid_request_error", "request_too_large"),
        (AuthenticationFailed, 401, "authentication_error", "invalid_api_key"),
        (ModelNotAllowed, 403, "permission_error", "model_not_allowed"),
        (ModelNotFound, 404, "invalid_request_error", "model_not_found"),
        (RouteNotFound, 404, "invalid_request_error", "not_found"),
        (MethodNotAllowed, 405, "invalid_request_error", "method_not_allowed"),
        (RateLimited, 429, "rate_limit_error", "rate_limit_exceeded"),
        (UpstreamRateLimited, 429, "rate_limit_error", "upstream_rate_limited"),
        (UpstreamError, 502, "upstream_error", "upstream_failed"),
        (UpstreamAuthFailed, 502, "upstream_error", "upstream_auth_failed"),
        (UpstreamJobFailed, 502, "upstream_error", "job_failed"),
        (UpstreamUnavailable, 503, "upstream_error", "upstream_unavailable"),
        (UpstreamTimeout, 504, "upstream_error", "upstream_timeout"),
        (InternalError, 500, "server_error", None),
    ],
)
def test_each_error_has_its_status_type_and_code(
    error_class: type[GatewayError], status: int, type_: str, code: str | None
) -> None:
    error = error_class("what went wrong", param="messages[0]")

    assert (error.status_code, error.type, error.code) == (status, type_, code)
    assert error.to_envelope() == {
        "error": {"message": "what went wrong", "type": type_, "param": "messages[0]", "code": code}
    }
    assert str(error) == "what went wrong"


@pytest.mark.parametrize(
    ("error_class", "retryable"),
    [
        (UpstreamError, True),
        (UpstreamUnavailable, True),
        (UpstreamTimeout, True),
        (UpstreamRateLimited, True),
        (UpstreamAuthFailed, False),
        (UpstreamJobFailed, False),
        (UpstreamRejected, False),
        (RateLimited, False),
        (InvalidRequest, False),
        (ModelNotFound, False),
        (InternalError, False),
    ],
)
def test_only_upstream_failures_that_another_deployment_may_avoid_are_retryable(
    error_class: type[GatewayError], retryable: bool
) -> None:
    assert error_class("x").retryable is retryable


def test_error_response_renders_the_envelope_with_status_and_headers() -> None:
    error = UpstreamRateLimited("slow down", headers={"Retry-After": "7"})

    response = error_reply(error)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["content-type"] == "application/json"
    assert orjson.loads(response.body) == error.to_envelope()


def test_errors_carry_no_headers_by_default() -> None:
    assert ModelNotFound("nope").headers == {}


def test_redact_replaces_the_given_secrets() -> None:
    text = redact("invalid key sk-live-123 for sk-live-123", ("sk-live-123", ""))

    assert text == "invalid key [redacted] for [redacted]"


def test_redact_strips_bearer_tokens() -> None:
    text = redact("sent Authorization: Bearer abc.DEF-123_x/+= and bearer xyz")

    assert "abc.DEF" not in text
    assert "xyz" not in text
    assert "Authorization: Bearer [redacted]" in text


def test_redact_strips_url_query_strings() -> None:
    text = redact(
        "cannot fetch https://bucket.example.com/a/b.png?X-Goog-Signature=s3cr3t&e=1 "
        'or "http://h.test/x?token=t0k"'
    )

    assert text == 'cannot fetch https://bucket.example.com/a/b.png or "http://h.test/x"'


def test_redact_truncates_long_text() -> None:
    text = redact("too long " * 300)

    assert text == ("too long " * 300)[:MAX_UPSTREAM_MESSAGE] + "…"


def test_redact_replaces_base64_blobs() -> None:
    blob = "iVBORw0KGgo" * 40

    text = redact(f"cannot read image data:image/png;base64,{blob}= at all")

    assert blob not in text
    assert text.endswith(" at all")
    assert "base64 characters" in text


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact("model not found: gpt-5") == "model not found: gpt-5"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key sk-1234", "key [redacted]"),
        ("BeArEr tok", "BeArEr [redacted]"),
        ("sig=abc", "sig=[redacted]"),
        ("https://h.test/a?b", "https://h.test/a"),
    ],
)
def test_scrub_catches_short_text_too(text: str, expected: str) -> None:
    # Short text skips the regular expressions only when none of them could match.
    assert scrub(text, ("sk-1234",)) == expected


def first_validation_error(body: dict[str, Any], *, prefix: bool = True) -> InvalidRequest:
    """What the gateway makes of pydantic's complaint, with or without a `body` prefix."""
    with pytest.raises(ValidationError) as caught:
        ChatCompletionRequest.model_validate(body)
    errors = caught.value.errors()
    if prefix:
        for error in errors:
            error["loc"] = ("body", *error["loc"])
    return validation_error(errors)


def user_message(content: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}]}


@pytest.mark.parametrize("prefix", [True, False])
def test_validation_error_names_a_top_level_field(prefix: bool) -> None:
    body = {**user_message("hi"), "temperature": 3}

    error = first_validation_error(body, prefix=prefix)

    assert error.param == "temperature"
    assert error.code == "invalid_value"
    assert "temperature" in error.message


def test_validation_error_names_a_missing_field() -> None:
    assert first_validation_error({"messages": [{"role": "user", "content": "x"}]}).param == "model"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(
            user_message([{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {}}]),
            "messages[0].content[1].image_url.url",
            id="image part without url",
        ),
        pytest.param(
            user_message(
                [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                    {"type": "image_url", "image_url": {"url": "https://x", "detail": "max"}},
                ]
            ),
            "messages[0].content[2].image_url.detail",
            id="unknown detail",
        ),
        pytest.param(
            user_message([{"type": "text"}]), "messages[0].content[0].text", id="text part"
        ),
        pytest.param(
            {"model": "m", "messages": [{"role": "user"}]}, "messages[0].content", id="no content"
        ),
    ],
)
def test_validation_error_param_is_the_path_to_the_bad_value(
    body: dict[str, Any], param: str
) -> None:
    error = first_validation_error(body)

    assert error.param == param
    assert "Input should" not in error.message


@pytest.mark.parametrize(
    ("body", "code", "param", "message"),
    [
        pytest.param(
            {"model": "m"},
            "missing_required_parameter",
            "messages",
            "Missing required parameter: 'messages'.",
            id="missing",
        ),
        pytest.param(
            {**user_message("hi"), "stream": "yes"},
            "invalid_type",
            "stream",
            "Invalid type for 'stream': expected a boolean, but got a string instead.",
            id="a string for a boolean",
        ),
        pytest.param(
            {**user_message("hi"), "n": 2.5},
            "invalid_type",
            "n",
            "Invalid type for 'n': expected an integer, but got a decimal number instead.",
            id="a decimal for an integer",
        ),
        pytest.param(
            {**user_message("hi"), "max_tokens": True},
            "invalid_type",
            "max_tokens",
            "Invalid type for 'max_tokens': expected an integer, but got a boolean instead.",
            id="a boolean for an integer",
        ),
        pytest.param(
            user_message([{"type": "image_url", "image_url": "https://x.test/a.png"}]),
            "invalid_type",
            "messages[0].content[0].image_url",
            "Invalid type for 'messages[0].content[0].image_url': expected an object, but got "
            "a string instead.",
            id="a string for an object",
        ),
        pytest.param(
            user_message(5),
            "invalid_type",
            "messages[0].content",
            "Invalid type for 'messages[0].content': expected one of a string or an array, but "
            "got an integer instead.",
            id="neither of a union",
        ),
        pytest.param(
            {"model": "m", "messages": [{"role": "bot", "content": "hi"}]},
            "invalid_value",
            "messages[0].role",
            "Invalid value: 'bot'. Supported values are: 'system', 'developer', 'user', "
            "'assistant', 'tool', and 'function'.",
            id="unknown role",
        ),
        pytest.param(
            {"model": "m", "messages": [{"role": 7, "content": "hi"}]},
            "invalid_type",
            "messages[0].role",
            "Invalid type for 'messages[0].role': expected a string, but got an integer instead.",
            id="a role that is no string",
        ),
        pytest.param(
            {"model": "m", "messages": [{"content": "hi"}]},
            "missing_required_parameter",
            "messages[0].role",
            "Missing required parameter: 'messages[0].role'.",
            id="no role",
        ),
        pytest.param(
            user_message([{"type": "video", "video": {}}]),
            "invalid_value",
            "messages[0].content[0].type",
            "Invalid value: 'video'. Supported values are: 'text', 'image_url', 'input_audio', "
            "'file', and 'refusal'.",
            id="unknown part type",
        ),
        pytest.param(
            {**user_message("hi"), "temperature": 2.5},
            "invalid_value",
            "temperature",
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got "
            "2.5 instead.",
            id="above the maximum",
        ),
        pytest.param(
            {"model": "m", "messages": []},
            "invalid_value",
            "messages",
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
            "an empty array instead.",
            id="empty array",
        ),
        pytest.param(
            {"model": "", "messages": [{"role": "user", "content": "hi"}]},
            "invalid_value",
            "model",
            "Invalid 'model': string too short. Expected a string with minimum length 1, but got "
            "an empty string instead.",
            id="empty string",
        ),
        pytest.param(
            {**user_message("hi"), "metadata": {"k": "v" * 513}},
            "invalid_value",
            "metadata.k",
            "Invalid 'metadata.k': string too long. Expected a string with maximum length 512, "
            "but got a string with length 513 instead.",
            id="long string",
        ),
        pytest.param(
            {**user_message("hi"), "stop": ["a", "b", "c", "d", "e"]},
            "invalid_value",
            "stop",
            "Invalid 'stop': at most 4 stop sequences are allowed.",
            id="a check of the gateway's own",
        ),
    ],
)
def test_validation_errors_speak_openais_codes_and_words(
    body: dict[str, Any], code: str, param: str, message: str
) -> None:
    error = first_validation_error(body, prefix=False)

    assert (error.code, error.param, error.message) == (code, param, message)
    assert error.status_code == 400
    assert error.type == "invalid_request_error"


async def call(app: Front, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.request(method, path)


def app_with_routes() -> Front:
    """The front layer of a real gateway, in front of endpoints that fail."""

    async def gateway_error(_: Incoming) -> Response:
        raise UpstreamRateLimited("slow down", headers={"Retry-After": "3"})

    async def unexpected(_: Incoming) -> Response:
        raise RuntimeError("password=hunter2")

    base = create_app(make_config())
    endpoints = Endpoints(
        [
            Endpoint("/gateway-error", ("GET",), gateway_error, "fails"),
            Endpoint("/unexpected", ("GET",), unexpected, "breaks"),
        ]
    )
    return Front(base.gateway, endpoints, base.lifespan)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("POST", "/gateway-error", 405, "method_not_allowed"),
        ("GET", "/gateway-error", 429, "upstream_rate_limited"),
        ("GET", "/unexpected", 500, None),
    ],
)
async def test_handlers_answer_every_failure_in_the_envelope(
    method: str, path: str, status: int, code: str | None
) -> None:
    response = await call(app_with_routes(), method, path)

    assert response.status_code == status
    assert set(response.json()) == {"error"}
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert response.json()["error"]["code"] == code


@pytest.mark.anyio
async def test_unexpected_errors_leak_no_details() -> None:
    response = await call(app_with_routes(), "GET", "/unexpected")

    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert response.json()["error"]["type"] == "server_error"


@pytest.mark.anyio
async def test_gateway_error_headers_are_sent() -> None:
    response = await call(app_with_routes(), "GET", "/gateway-error")

    assert response.headers["retry-after"] == "3"
