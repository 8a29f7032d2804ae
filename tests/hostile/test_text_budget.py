"""One budget of text over everything that becomes prompt, against the server `python -m app`
starts: `instructions`, tool descriptions and schemas, a response schema and `user` count
against `requests.max_text_chars` with the messages' text, in chat and in the Responses API,
streamed or not; none of them carries megabytes upstream past it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.hostile.fakes import HostileUpstream
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
MAX_TEXT_CHARS = 4 * 1024 * 1024  # the default
OVER = "z" * (MAX_TEXT_CHARS + 1000)
HALF = "h" * (MAX_TEXT_CHARS // 2 + 1000)


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    models = [
        {"name": "inspect", "provider": "inspect"},
        {"name": "echo", "provider": "openai", "base_url": hostile_upstream.base_url("echo-model")},
    ]
    return gateways.start(gateway_config(models))


def _tool(description: str) -> dict[str, Any]:
    return {"name": "lookup", "description": description, "parameters": {"type": "object"}}


def _schema(size: str) -> dict[str, Any]:
    return {"type": "object", "description": size}


HI = [{"role": "user", "content": "hi"}]
CHAT: dict[str, dict[str, Any]] = {
    "tool-description": {"tools": [{"type": "function", "function": _tool(OVER)}]},
    "response-schema": {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "s", "schema": _schema(OVER)},
        }
    },
    "user": {"user": OVER},
    "messages-and-tools": {
        "messages": [{"role": "user", "content": HALF}],
        "tools": [{"type": "function", "function": _tool(HALF)}],
    },
}
RESPONSES: dict[str, dict[str, Any]] = {
    "instructions": {"instructions": OVER},
    "tool-description": {"tools": [{"type": "function", **_tool(OVER)}]},
    "text-format": {
        "text": {"format": {"type": "json_schema", "name": "s", "schema": _schema(OVER)}}
    },
    "user": {"user": OVER},
    "input-and-instructions": {"instructions": HALF, "input": HALF},
}


@pytest.mark.parametrize("case", sorted(CHAT))
def test_chat_text_past_the_budget_anywhere_is_refused(gateway: GatewayProcess, case: str) -> None:
    body = {"model": "echo", "messages": HI, **CHAT[case]}
    with Watch(gateway, rss_growth_mb=120, max_cpu_s=2):
        reply = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=60)
        print(f"chat {case}: {reply.status_code}, {len(reply.content)} bytes back")  # noqa: T201
        assert reply.status_code == 400, reply.text[:300]
        assert "requests.max_text_chars" in reply.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("case", sorted(RESPONSES))
def test_responses_text_past_the_budget_anywhere_is_refused(
    gateway: GatewayProcess, case: str, stream: bool
) -> None:
    model = "echo" if "tools" in RESPONSES[case] else "inspect"  # inspect takes no tools
    body = {"model": model, "input": "hi", "stream": stream, **RESPONSES[case]}
    with Watch(gateway, rss_growth_mb=120, max_cpu_s=2):
        reply = httpx.post(f"{gateway.url}/v1/responses", json=body, timeout=60)
        said = f"responses {case}, stream {stream}: {reply.status_code}"
        print(f"{said}, {len(reply.content)} bytes back")  # noqa: T201
        assert reply.status_code == 400, reply.text[:300]
        assert "requests.max_text_chars" in reply.json()["error"]["message"]


def test_text_within_the_budget_still_serves(gateway: GatewayProcess) -> None:
    body = {"model": "inspect", "input": "hi", "instructions": "Be brief. " * 1000}
    assert httpx.post(f"{gateway.url}/v1/responses", json=body, timeout=30).status_code == 200
