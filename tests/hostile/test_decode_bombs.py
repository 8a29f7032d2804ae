"""Conversions that must not outlive their requests, against the server `python -m app`
starts: a progressive JPEG of absurdly many scans is refused before it is decoded; decodes
are admitted by the memory they take, so that many at once stay within
`images.max_decode_bytes`; when their clients hang up or their deadline passes, those not
started never start, and those under way end (a JPEG's last pass can't be cut short, so one
decode's worth of CPU follows at most)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.hostile.bombs import progressive_jpeg
from tests.hostile.fakes import data_uri
from tests.hostile.watch import Watch, gateway_cpu_s
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
# 7064² at full chroma, its last scan repeated: 0.5 MB that take a decoder a minute.
ABSURD = progressive_jpeg(7064, 1500)
# 7000² in 4:2:0 with 99 scans: allowed, and two seconds of decoding, 150 MB held.
HEAVY = progressive_jpeg(7000, 99, subsampling=2)
HEAVY_MB = 150
# What may follow the last request: one such decode, on a busy machine.
ONE_DECODE_S = 2.5
CLIENTS = 6


@pytest.fixture
def gateway(gateways: Gateways) -> Iterator[GatewayProcess]:
    """A gateway of its own for each case: a decode that runs on must not spill into the next."""
    models: list[dict[str, object]] = [
        {"name": "inspect", "provider": "inspect"},
        {"name": "hurried", "provider": "inspect", "timeout_s": 0.5, "retries": 0},
    ]
    gateway = gateways.start(gateway_config(models))
    yield gateway
    gateway.stop()


def _ask(gateway: GatewayProcess, image: bytes, *, model: str = "inspect", wait_s: float = 60):
    part = {
        "type": "image_url",
        "image_url": {"url": data_uri(image, "image/jpeg"), "detail": "low"},
    }
    body = {"model": model, "messages": [{"role": "user", "content": [part]}]}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=wait_s)


def _hang_up(gateway: GatewayProcess, image: bytes) -> str:
    try:
        return str(_ask(gateway, image, wait_s=0.5).status_code)
    except httpx.TimeoutException:
        return "hung up"


def _busy_after(gateway: GatewayProcess, quiet_s: float = 0.3, window_s: float = 3.0) -> float:
    """CPU seconds the gateway spends in `window_s`, from `quiet_s` after the last request."""
    time.sleep(quiet_s)
    before = gateway_cpu_s(gateway.process.pid)
    time.sleep(window_s)
    return gateway_cpu_s(gateway.process.pid) - before


def test_a_jpeg_of_absurdly_many_scans_is_refused_before_decoding(
    gateway: GatewayProcess,
) -> None:
    with Watch(gateway, max_cpu_s=1.0):
        try:
            reply = _ask(gateway, ABSURD, wait_s=20)
            status, said = reply.status_code, reply.text[:200]
        except httpx.TimeoutException:
            status, said = 0, "no answer within 20 s"
        print(f"1500 scans: {status} {said}")  # noqa: T201
        assert status == 400, said
        assert "images.max_jpeg_scans" in said


def test_decodes_whose_clients_hung_up_stop_and_stay_within_the_budget(
    gateway: GatewayProcess,
) -> None:
    with Watch(gateway, rss_growth_mb=HEAVY_MB + 70, max_cpu_s=12):
        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = list(pool.map(lambda _: _hang_up(gateway, HEAVY), range(CLIENTS)))
        after = _busy_after(gateway)
        print(f"hang-ups {statuses}, CPU in the 3 s after: {after:.2f} s")  # noqa: T201
        assert after < ONE_DECODE_S, f"decodes nobody waits for ran on: {after:.1f} s of CPU"


def test_decodes_past_their_deadline_stop(gateway: GatewayProcess) -> None:
    with Watch(gateway, rss_growth_mb=HEAVY_MB + 70, max_cpu_s=12):
        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(lambda _: _ask(gateway, HEAVY, model="hurried"), range(4)))
        statuses = [reply.status_code for reply in replies]
        after = _busy_after(gateway)
        print(f"deadline {statuses}, CPU in the 3 s after: {after:.2f} s")  # noqa: T201
        assert statuses == [504] * 4
        assert after < ONE_DECODE_S, f"decodes past their deadline ran on: {after:.1f} s"


def test_a_heavy_image_alone_is_still_converted(gateway: GatewayProcess) -> None:
    with Watch(gateway, rss_growth_mb=HEAVY_MB + 70):
        reply = _ask(gateway, HEAVY)
    assert reply.status_code == 200, reply.text[:300]
    assert "resized to fit 512×512" in reply.json()["choices"][0]["message"]["content"]
