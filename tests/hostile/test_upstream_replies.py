"""Upstream replies that never end are cut at a cap: 502 `upstream_failed`, memory bounded."""

from __future__ import annotations

import httpx
import pytest

from tests.hostile.fakes import HostileUpstream
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
PROMPT = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    """Every hostile reply behind a model of its name; the reply caps are the defaults."""
    models = [
        {
            "name": prefix,
            "provider": "openai",
            "base_url": hostile_upstream.base_url(prefix),
            "retries": 0,
            "timeout_s": 30,
        }
        for prefix in ("endless-body", "endless-line", "endless-event", "gzip-body", "gzip-event")
    ]
    return gateways.start(gateway_config(models))


@pytest.mark.parametrize("model", ["endless-body", "gzip-body"])
def test_a_reply_body_that_never_ends_is_a_502(gateway: GatewayProcess, model: str) -> None:
    with Watch(gateway):
        reply = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": model, "messages": PROMPT},
            timeout=30,
        )
    assert reply.status_code == 502, reply.text[:200]
    assert reply.json()["error"]["code"] == "upstream_failed"


@pytest.mark.parametrize("model", ["endless-line", "endless-event", "gzip-event"])
def test_a_stream_event_that_never_ends_fails_the_stream(
    gateway: GatewayProcess, model: str
) -> None:
    body = {"model": model, "messages": PROMPT, "stream": True}
    with (
        Watch(gateway),
        httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=30) as reply,
    ):
        events = [line for line in reply.iter_lines() if line.startswith("data: ")]
    assert reply.status_code == 200
    assert events, "the stream sent no event"
    assert '"code":"upstream_failed"' in events[-1].replace(" ", ""), events[-1][:200]
