"""The upstream seam: vendor error bodies, HTTP statuses and transport failures to our errors."""

from __future__ import annotations

import httpx
import pytest

from app.errors import (
    GatewayError,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.providers.upstream import (
    UpstreamReply,
    map_upstream_errors,
    raise_for_status,
    retry_after_s,
    upstream_message,
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            b'{"error": {"message": "Invalid image URL", "type": "invalid_request_error"}}',
            "Invalid image URL",
            id="openai",
        ),
        pytest.param(
            b'{"message": "Free-tier limit: upgrade", "path": "/v1/chat/completions",'
            b' "requestId": "798b860e", "statusCode": "429"}',
            "Free-tier limit: upgrade",
            id="aimlapi",
        ),
        pytest.param(
            b'{"error": "required fields are missing"}',
            "required fields are missing",
            id="predictionguard",
        ),
        pytest.param(b'{"detail": "Not authenticated"}', "Not authenticated", id="fastapi"),
        pytest.param(
            b'{"detail": [{"loc": ["body", "model"], "msg": "field required"}]}',
            '[{"loc":["body","model"],"msg":"field required"}]',
            id="fastapi validation",
        ),
        pytest.param(b"  <html>Bad Gateway</html>\n", "<html>Bad Gateway</html>", id="html"),
        pytest.param(b"upstream overloaded", "upstream overloaded", id="plain text"),
        pytest.param(b"[1, 2]", "[1, 2]", id="json but not an object"),
        pytest.param(b"", "", id="empty"),
        pytest.param(b"\xff\xfe oops", "\ufffd\ufffd oops", id="not utf-8"),
    ],
)
def test_upstream_message_reads_every_vendor_shape(body: bytes, message: str) -> None:
    assert upstream_message(body) == message


def reply(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> UpstreamReply:
    return UpstreamReply(status, httpx.Headers(headers), body)


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_every_2xx_is_success(status: int) -> None:
    raise_for_status(reply(status), "aimlapi", ())


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (401, UpstreamAuthFailed),
        (403, UpstreamAuthFailed),
        (429, UpstreamRateLimited),
        (408, UpstreamTimeout),
        (400, UpstreamRejected),
        (404, UpstreamRejected),
        (413, UpstreamRejected),
        (422, UpstreamRejected),
        (500, UpstreamError),
        (502, UpstreamError),
        (503, UpstreamError),
        (302, UpstreamError),
    ],
)
def test_statuses_map_to_the_error_table(status: int, error_class: type[GatewayError]) -> None:
    with pytest.raises(GatewayError) as caught:
        raise_for_status(reply(status, b'{"error": {"message": "no"}}'), "aimlapi", ())

    assert type(caught.value) is error_class


def test_upstream_auth_failure_is_ours_not_the_clients() -> None:
    with pytest.raises(UpstreamAuthFailed) as caught:
        raise_for_status(reply(401, b'{"error": {"message": "bad key sk-123"}}'), "x", ())

    assert caught.value.status_code == 502
    assert "sk-123" not in caught.value.message


def test_rate_limit_keeps_the_upstream_retry_after() -> None:
    response = reply(429, b'{"message": "Too Many Requests"}', {"Retry-After": "12"})

    with pytest.raises(UpstreamRateLimited) as caught:
        raise_for_status(response, "aimlapi", ())

    assert caught.value.headers == {"Retry-After": "12"}
    assert "Too Many Requests" in caught.value.message


def test_rate_limit_without_retry_after_sends_none() -> None:
    with pytest.raises(UpstreamRateLimited) as caught:
        raise_for_status(reply(429), "aimlapi", ())

    assert caught.value.headers == {}


def test_rejection_keeps_the_upstream_message_without_secrets() -> None:
    body = b'{"error": {"message": "cannot fetch https://b.test/x.png?sig=abc with key sk-9"}}'

    with pytest.raises(UpstreamRejected) as caught:
        raise_for_status(reply(400, body), "openai", ("sk-9",))

    message = caught.value.message
    assert "cannot fetch https://b.test/x.png" in message
    assert "sig=abc" not in message
    assert "sk-9" not in message
    assert caught.value.status_code == 400


def test_long_upstream_bodies_are_truncated() -> None:
    with pytest.raises(UpstreamError) as caught:
        raise_for_status(reply(500, b"e" * 5000), "openai", ())

    assert len(caught.value.message) < 700


def test_empty_error_body_still_says_what_happened() -> None:
    with pytest.raises(UpstreamError, match="HTTP 503"):
        raise_for_status(reply(503), "openai", ())


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        (httpx.ConnectError("refused"), UpstreamUnavailable),
        (httpx.ReadTimeout("slow"), UpstreamTimeout),
        (httpx.ConnectTimeout("slow"), UpstreamTimeout),
        (httpx.PoolTimeout("busy"), UpstreamTimeout),
        (httpx.RemoteProtocolError("peer closed"), UpstreamError),
        (httpx.ReadError("reset"), UpstreamError),
    ],
)
def test_transport_failures_are_translated(
    failure: Exception, error_class: type[GatewayError]
) -> None:
    with pytest.raises(GatewayError) as caught, map_upstream_errors("openai"):
        raise failure

    assert type(caught.value) is error_class
    assert "openai" in caught.value.message


def test_gateway_errors_pass_through_the_seam_untouched() -> None:
    original = UpstreamRejected("no")

    with pytest.raises(UpstreamRejected) as caught, map_upstream_errors("openai"):
        raise original

    assert caught.value is original


def test_other_exceptions_are_not_disguised() -> None:
    with pytest.raises(KeyError), map_upstream_errors("openai"):
        raise KeyError("bug")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("12", 12),
        (" 7 ", 7),
        ("0.5", 1),
        ("999999999", 24 * 3600),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0),  # a date gone by: now
        ("nan", None),
        ("-1", None),
        ("inf", None),
        ("soon", None),
        ("", None),
    ],
)
def test_a_retry_after_is_whole_seconds_within_a_day_or_nothing(
    header: str, seconds: int | None
) -> None:
    assert retry_after_s(header) == seconds


def test_a_rate_limit_whose_retry_after_is_no_number_passes_none_on() -> None:
    response = reply(429, b'{"message": "Too Many Requests"}', {"Retry-After": "nan"})

    with pytest.raises(UpstreamRateLimited) as caught:
        raise_for_status(response, "openai", ())

    assert caught.value.headers == {}
