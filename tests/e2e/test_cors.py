"""CORS as the browser reads it, header by header: preflights from the origins `server.cors`
lists are answered on every endpoint without a key; replies to them say so; every other
origin, and every gateway without `server.cors`, gets no CORS header."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import StartGateway
from tests.e2e.responses.helpers import RED_SQUARE

pytestmark = pytest.mark.e2e

APP = "https://app.example.com"
KEY = "gw-cors-3c91d07e"
# What the openai JS SDK asks for before its first call.
SDK_HEADERS = (
    "authorization,content-type,x-stainless-arch,x-stainless-lang,x-stainless-os,"
    "x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,"
    "x-stainless-runtime-version,x-stainless-timeout"
)
ENDPOINTS = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/chat/completions"),
    ("POST", "/v1/responses"),
    ("GET", "/v1/responses/resp_abc"),
    ("DELETE", "/v1/responses/resp_abc"),
    ("GET", "/v1/responses/resp_abc/input_items"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/inspect"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
]
CHAT = {"model": "inspect", "messages": [{"role": "user", "content": "Hello"}]}


def preflight(url: str, path: str, method: str, origin: str = APP) -> httpx.Response:
    headers = {
        "origin": origin,
        "access-control-request-method": method,
        "access-control-request-headers": SDK_HEADERS,
    }
    return httpx.options(url + path, headers=headers, timeout=10)


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


@pytest.fixture
def keyed(start_gateway: StartGateway) -> str:
    return start_gateway([{"name": "inspect", "provider": "inspect"}], server=server())


def server(**settings: Any) -> dict[str, Any]:
    return {"api_keys": [KEY], "cors": [APP, "http://localhost:5173"], **settings}


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_preflight_from_a_listed_origin_is_answered_without_a_key(
    keyed: str, method: str, path: str
) -> None:
    response = preflight(keyed, path, method)

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == APP
    assert method in response.headers["access-control-allow-methods"].split(", ")
    assert response.headers["access-control-allow-headers"] == SDK_HEADERS
    assert int(response.headers["access-control-max-age"]) > 0
    assert response.headers["vary"] == "origin"


def test_replies_to_a_listed_origin_allow_it_and_expose_the_gateway_headers(keyed: str) -> None:
    headers = {"origin": APP, "authorization": f"Bearer {KEY}"}

    reply = httpx.post(f"{keyed}/v1/chat/completions", json=CHAT, headers=headers, timeout=10)
    refused = httpx.post(f"{keyed}/v1/chat/completions", json=CHAT, headers={"origin": APP})

    for response, status in ((reply, 200), (refused, 401)):
        assert response.status_code == status
        assert response.headers["access-control-allow-origin"] == APP
        exposed = response.headers["access-control-expose-headers"].split(", ")
        assert {"x-request-id", "x-gateway-overhead-ms", "x-gateway-cache"} <= set(exposed)
        assert response.headers["vary"] == "origin"


def test_a_stream_to_a_listed_origin_carries_the_headers(keyed: str) -> None:
    headers = {"origin": "http://localhost:5173", "authorization": f"Bearer {KEY}"}
    image = {"type": "image_url", "image_url": {"url": RED_SQUARE}}
    body = {"model": "inspect", "stream": True, "messages": [{"role": "user", "content": [image]}]}

    with httpx.stream(
        "POST", f"{keyed}/v1/chat/completions", json=body, headers=headers, timeout=10
    ) as response:
        text = response.read().decode()

    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert text.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://app.example.com.evil.example", "null"]
)
def test_an_origin_not_listed_gets_no_cors_header(keyed: str, origin: str) -> None:
    asked = preflight(keyed, "/v1/chat/completions", "POST", origin)
    reply = httpx.get(
        f"{keyed}/v1/models",
        headers={"origin": origin, "authorization": f"Bearer {KEY}"},
        timeout=10,
    )

    assert asked.status_code == 405  # not a preflight it answers: an OPTIONS like any other
    assert cors_headers(asked) == {}
    assert reply.status_code == 200
    assert cors_headers(reply) == {}


def test_without_server_cors_no_cors_header_is_ever_sent(start_gateway: StartGateway) -> None:
    url = start_gateway([{"name": "inspect", "provider": "inspect"}])

    asked = preflight(url, "/v1/chat/completions", "POST")
    reply = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers={"origin": APP})

    assert asked.status_code == 405
    assert cors_headers(asked) == {}
    assert reply.status_code == 200
    assert cors_headers(reply) == {}


def test_any_origin_with_a_star(start_gateway: StartGateway) -> None:
    url = start_gateway([{"name": "inspect", "provider": "inspect"}], server={"cors": ["*"]})

    asked = preflight(url, "/v1/chat/completions", "POST", "https://anyone.example")
    reply = httpx.post(
        f"{url}/v1/chat/completions", json=CHAT, headers={"origin": "https://anyone.example"}
    )

    assert asked.status_code == 204
    assert asked.headers["access-control-allow-origin"] == "*"
    # `*` does not cover Authorization: it is named.
    assert "authorization" in asked.headers["access-control-allow-headers"].split(",")
    assert reply.headers["access-control-allow-origin"] == "*"
    assert "vary" not in reply.headers


def test_a_preflight_asking_for_malformed_headers_is_not_granted_them(keyed: str) -> None:
    headers = {
        "origin": APP,
        "access-control-request-method": "POST",
        "access-control-request-headers": 'authorization, x-one x-two; q="1"',
    }
    response = httpx.options(f"{keyed}/v1/chat/completions", headers=headers, timeout=10)

    assert response.status_code == 204
    assert "access-control-allow-headers" not in response.headers
