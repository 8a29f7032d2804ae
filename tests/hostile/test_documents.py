"""Hostile documents against the server `python -m app` starts: each is refused with a clear
400 `invalid_document` naming the part, within the document deadline, while `/health` keeps
answering, the gateway's memory stays where it was and its render processes stay within their
cap; a render nobody waits for any more stops."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest

from tests.documents import (
    Pdf,
    asking_about,
    deep_pdf,
    encrypted_pdf,
    image_bomb_pdf,
    pages_pdf,
    report_pdf,
    slow_pdf,
)
from tests.hostile.raw import connect
from tests.hostile.watch import Watch, cpu_s, descendants, memory_kb
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e

DEADLINE_S = 2.0
RENDER_MEMORY_MB = 512
# How late past the deadline a refusal may come on a busy machine.
SLACK_S = 1.5
DOCUMENTS = {
    "timeout_s": DEADLINE_S,
    "max_render_memory_bytes": RENDER_MEMORY_MB * 1024 * 1024,
}


@pytest.fixture(scope="module")
def gateway(gateways: Gateways) -> GatewayProcess:
    return gateways.start(gateway_config(documents=DOCUMENTS))


def ask(gateway: GatewayProcess, pdf: Pdf, timeout_s: float = 30) -> httpx.Response:
    body = asking_about(pdf, "inspect")
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=timeout_s)


def peak_rss_mb(pids: list[int]) -> float:
    peaks = []
    for pid in pids:
        try:
            peaks.append(memory_kb(pid, "VmHWM") / 1024)
        except (OSError, LookupError):
            continue
    return max(peaks, default=0.0)


@pytest.fixture
def renders(gateway: GatewayProcess) -> None:
    """The render processes are up (a document was read) before the case starts."""
    assert ask(gateway, report_pdf()).status_code == 200


@pytest.mark.usefixtures("renders")
@pytest.mark.parametrize(
    ("pdf", "says"),
    [
        (encrypted_pdf(), "encrypted"),
        (Pdf(report_pdf().data[:3000]), "not a readable PDF"),
        (Pdf(b"%PDF-1.7\n" + os.urandom(200_000)), "not a readable PDF"),
        (Pdf(b"GIF89a" + os.urandom(1000)), "not a PDF"),
        (pages_pdf(0), "not a readable PDF"),
        (pages_pdf(1, (14_400, 14_400)), "200×200 inches"),
        (pages_pdf(10_000), "10000 pages"),
        (deep_pdf(), "could not be rendered"),
        (image_bomb_pdf(), "30000×30000 pixels"),
        (slow_pdf(), f"longer than {DEADLINE_S:g} s"),
    ],
    ids=[
        "encrypted",
        "truncated",
        "corrupt",
        "not-a-pdf",
        "no-pages",
        "200-inch-page",
        "10000-pages",
        "deep-page-tree",
        "image-bomb",
        "slow-to-render",
    ],
)
def test_a_bad_document_is_refused_in_time_with_memory_bounded(
    gateway: GatewayProcess, pdf: Pdf, says: str
) -> None:
    with Watch(gateway):
        started = time.monotonic()
        reply = ask(gateway, pdf)
        took = time.monotonic() - started
        render_peak = peak_rss_mb(descendants(gateway.process.pid))

    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_document", "messages[0].content[1]")
    assert says in error["message"]
    assert took < DEADLINE_S + SLACK_S
    assert render_peak < RENDER_MEMORY_MB
    health = httpx.get(f"{gateway.url}/health", timeout=5)
    assert health.status_code == 200


@pytest.mark.usefixtures("renders")
def test_a_render_nobody_waits_for_stops(gateway: GatewayProcess) -> None:
    body = json.dumps(
        {
            "model": "inspect",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "file", "file": {"file_data": slow_pdf(pages=10).data_uri}},
                    ],
                }
            ],
        }
    ).encode()
    before = cpu_s(descendants(gateway.process.pid))

    with connect(gateway.url) as client:
        # Ten pages: tens of seconds of work. The client leaves once the render is under way.
        client.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
        deadline = time.monotonic() + 20
        while (rendered := cpu_s(descendants(gateway.process.pid)) - before) < 0.3:
            assert time.monotonic() < deadline, "the render never started"
            time.sleep(0.1)
    time.sleep(1.0)  # the gateway notices, and stops the render
    settled = cpu_s(descendants(gateway.process.pid))
    time.sleep(1.0)
    after = cpu_s(descendants(gateway.process.pid))

    assert rendered >= 0.3
    assert after - settled < 0.2  # the render is no more
    # The next document is read as usual.
    assert ask(gateway, report_pdf()).status_code == 200
