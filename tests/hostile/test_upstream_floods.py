"""Upstreams that answer too fast and too much, against the server `python -m app` starts: a
stream of a million one-character chunks, and a reply of a hundred thousand choices to a
request for one. The event loop keeps answering `/health` meanwhile, and what the gateway
spends is bounded."""

from __future__ import annotations

import httpx
import pytest

from tests.hostile.fakes import FLOOD_CHUNKS, HostileUpstream
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
PROMPT = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    models = [
        {
            "name": prefix,
            "provider": "openai",
            "base_url": hostile_upstream.base_url(prefix),
            "retries": 0,
            "timeout_s": 120,
        }
        for prefix in ("flood", "many-choices")
    ]
    return gateways.start(gateway_config(models))


def test_a_flood_of_tiny_chunks_leaves_the_loop_free(gateway: GatewayProcess) -> None:
    body = {"model": "flood", "messages": PROMPT, "stream": True}
    with (
        Watch(gateway, max_cpu_s=7),
        httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=300) as reply,
    ):
        text = "".join(reply.iter_text())
        events = text.count("\n\ndata: ") + 1
        print(f"flood: {reply.status_code}, {events} events of {FLOOD_CHUNKS}")  # noqa: T201
        assert reply.status_code == 200
        assert text.endswith("data: [DONE]\n\n"), text[-300:]
        assert text.count('"content":"a') >= 1  # the text, in fewer and larger chunks


def test_a_reply_of_more_choices_than_asked_for_is_refused(gateway: GatewayProcess) -> None:
    body = {"model": "many-choices", "messages": PROMPT}
    with Watch(gateway, max_cpu_s=1):
        reply = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=60)
        print(f"many choices: {reply.status_code}, {len(reply.content)} bytes")  # noqa: T201
        assert reply.status_code == 502, reply.text[:300]
        assert "choices" in reply.json()["error"]["message"]
