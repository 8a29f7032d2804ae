"""Large PDFs for an upstream that reads them (`documents: native`), against the server
`python -m app` starts: each goes into the upstream body as one base64 copy, made on a worker
thread and sent as it is, never as a string nor in a copy of the whole body."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from tests.documents import Pdf, asking_about, report_pdf
from tests.hostile.fakes import HostileUpstream
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
MB = 1024 * 1024
REQUESTS = 4


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    """An OpenAI-compatible upstream that reads PDFs, and takes two seconds to answer: the
    requests hold their documents meanwhile."""
    model = {
        "name": "reads-pdf",
        "provider": "openai",
        "base_url": hostile_upstream.base_url("predictionguard-slow"),
        "api_key": "upstream-key",
        "retries": 0,
        "timeout_s": 60,
        "documents": "native",
    }
    return gateways.start(gateway_config([model]))


def large_pdf(tag: int) -> Pdf:
    """A PDF of 19 MB, each one different: a report followed by what readers skip."""
    return Pdf(report_pdf().data + b"\n%" + os.urandom(19 * MB) + b"%d" % tag)


async def _ask_at_once(gateway: GatewayProcess, pdfs: list[Pdf]) -> list[int]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=120) as client:
        replies = await asyncio.gather(
            *[
                client.post("/v1/chat/completions", json=asking_about(pdf, "reads-pdf"))
                for pdf in pdfs
            ]
        )
    return [reply.status_code for reply in replies]


def test_large_documents_go_upstream_with_one_copy_of_their_base64(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream
) -> None:
    """Four requests of a 19 MB PDF at once. Each holds its body (26 MB of base64), the body
    parsed (26 MB), the PDF decoded (19 MB) and its base64 for the upstream (26 MB): at most
    100 MB (82 MB measured). A string of that base64 and a whole encoded upstream body made
    two more copies (128 MB a request)."""
    hostile_upstream.reset()
    pdfs = [large_pdf(n) for n in range(REQUESTS)]
    with Watch(gateway, rss_growth_mb=REQUESTS * 100, max_cpu_s=5):
        statuses = asyncio.run(_ask_at_once(gateway, pdfs))
        print(f"{REQUESTS} × 19 MB PDFs: {statuses}")  # noqa: T201
    assert statuses == [200] * REQUESTS
    assert hostile_upstream.calls == REQUESTS
    assert hostile_upstream.received_bytes > 25 * MB  # the PDF, in base64
