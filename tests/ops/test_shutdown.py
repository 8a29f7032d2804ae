"""Graceful shutdown: on SIGTERM the gateway stops taking connections, lets open streams finish
within `server.shutdown_grace_s`, then exits."""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest

from tests.e2e.deployments import entry
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.ops.configs import gateway_config
from tests.ops.traffic import chat_body
from tests.processes import CLEAN_EXIT, Gateways

pytestmark = pytest.mark.e2e

GRACE_S = 5.0
PIECES = [f"piece{index} " for index in range(20)]
REFUSAL_WAIT_S = 1.0


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_an_open_stream_finish_and_refuses_new_connections(
    upstream: FakeUpstream, gateways: Gateways, workers: int
) -> None:
    upstream.script("up-slow", Reply(deltas=PIECES, chunk_delay_s=0.1))
    config = gateway_config(
        [entry("slow", upstream, upstream_model="up-slow")],
        server={"shutdown_grace_s": GRACE_S},
    )
    gateway = gateways.start(config, workers=workers)
    events: list[str] = []

    with (
        httpx.Client(base_url=gateway.url, timeout=10) as http,
        http.stream("POST", "/v1/chat/completions", json=chat_body("slow", stream=True)) as stream,
    ):
        assert stream.status_code == 200
        lines = stream.iter_lines()
        while len(events) < 4:
            if (line := next(lines)).startswith("data: "):
                events.append(line.removeprefix("data: "))
        gateway.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        refused_while_streaming = refuses_connections(gateway.url)
        still_serving = gateway.process.poll() is None
        events += [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    status = gateway.process.wait(GRACE_S + 5)
    exited_after_s = time.monotonic() - signalled

    observed = {
        "new connections refused": refused_while_streaming,
        "still serving the stream then": still_serving,
        "stream ended with [DONE]": events[-1] == "[DONE]",
        "every piece arrived, and no error": answer(events[:-1]) == "".join(PIECES),
        "clean exit status": status in CLEAN_EXIT,
        "exited within the grace period": exited_after_s < GRACE_S,
    }
    assert observed == dict.fromkeys(observed, True)


def answer(events: list[str]) -> str:
    """The text of a stream's chunks; an error event fails it."""
    chunks = [json.loads(event) for event in events]
    assert not [chunk for chunk in chunks if "error" in chunk]
    return "".join(choice["delta"].get("content") or "" for c in chunks for choice in c["choices"])


def refuses_connections(url: str) -> bool:
    """Whether a new connection is refused within `REFUSAL_WAIT_S` (one that is accepted but
    never answered is not refused: its client waits until its own timeout)."""
    deadline = time.monotonic() + REFUSAL_WAIT_S
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/health", timeout=0.5)
        except httpx.ConnectError:
            return True
        except httpx.TimeoutException:
            return False
        except httpx.TransportError:
            pass  # accepted just before the listener closed, then dropped: try again
        time.sleep(0.05)
    return False
