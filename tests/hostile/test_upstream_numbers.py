"""Numbers no upstream should send, against the server `python -m app` starts: usage below zero
or past any count, credits below zero or not a number, a `Retry-After` of `nan`. Each request
still gets its answer and leaves its access-log line, and the counters stay sane."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.hostile.fakes import NUMBERS, HostileUpstream
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
PROMPT = [{"role": "user", "content": "hello"}]
# What no counter of the gateway's may hold after a few requests.
SANE_COUNT = 1e12


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    models = [
        {
            "name": case,
            "provider": "openai",
            "base_url": hostile_upstream.base_url(f"numbers/{case}"),
            "retries": 1,
            "timeout_s": 30,
        }
        for case in [*NUMBERS, "retry-nan"]
    ]
    return gateways.start(gateway_config(models))


def _access_lines(gateway: GatewayProcess, request_id: str) -> list[dict[str, object]]:
    """The access lines of one request, once the first is written (it follows the answer)."""
    for _ in range(100):
        lines = [
            record
            for record in gateway.log_records()
            if record.get("logger") == "app.access" and record.get("request_id") == request_id
        ]
        if lines:
            return lines
        time.sleep(0.02)
    return []


def _counters(gateway: GatewayProcess) -> dict[str, float]:
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    found = re.findall(r"^(gateway_(?:tokens|job_credits)_total\{[^}]*\}) (\S+)$", text, re.M)
    return {name: float(value) for name, value in found}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("case", sorted(NUMBERS))
def test_numbers_an_upstream_reports_are_checked_and_the_request_logged(
    gateway: GatewayProcess, case: str, stream: bool
) -> None:
    request_id = f"numbers-{case}-{stream}"
    body = {"model": case, "messages": PROMPT, "stream": stream}
    with Watch(gateway, max_cpu_s=2):
        reply = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json=body,
            headers={"x-request-id": request_id},
            timeout=30,
        )
        print(f"{case}, stream {stream}: {reply.status_code}")  # noqa: T201
        assert reply.status_code == 200, reply.text[:300]
        if not stream:
            usage = reply.json()["usage"]
            assert all(0 <= value <= SANE_COUNT for value in usage.values()), usage
        [line] = _access_lines(gateway, request_id)
        assert line["status"] == 200
        counters = _counters(gateway)
        assert all(0 <= value <= SANE_COUNT for value in counters.values()), counters
    assert "Exception in ASGI application" not in gateway.log_text()
    assert "Logging error" not in gateway.log_text()


def test_a_retry_after_that_is_no_number_is_neither_waited_for_nor_passed_on(
    gateway: GatewayProcess,
) -> None:
    with Watch(gateway, max_cpu_s=2):
        reply = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "retry-nan", "messages": PROMPT},
            headers={"x-request-id": "numbers-retry-nan"},
            timeout=30,
        )
        print(f"retry-nan: {reply.status_code} {reply.headers.get('retry-after')}")  # noqa: T201
        assert reply.status_code == 429, reply.text[:300]
        assert reply.json()["error"]["code"] == "upstream_rate_limited"
        assert "retry-after" not in reply.headers
        [line] = _access_lines(gateway, "numbers-retry-nan")
        assert line["status"] == 429
