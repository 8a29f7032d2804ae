"""What a gateway process tells its operator's tools: `/metrics` as a Prometheus user
expects it (nothing doubled, `process_*`, the build, the overhead), and access lines that say
who asked (behind trusted proxies too) without probes drowning them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from app import __version__
from tests.e2e.deployments import entry
from tests.e2e.fakes.openai_compat import FakeUpstream
from tests.ops.configs import gateway_config
from tests.ops.traffic import chat_body, metric_value, scrape, send_chats
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e

PROCESS_SERIES = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
)


def families(exposition: str) -> list[str]:
    return re.findall(r"^# TYPE (\S+) ", exposition, re.MULTILINE)


def test_metrics_have_no_created_series_and_each_family_once(
    upstream: FakeUpstream, gateways: Gateways
) -> None:
    gateway = gateways.start(gateway_config([entry("vision", upstream, upstream_model="up")]))
    send_chats([gateway.url], "vision", 2)

    exposition = scrape(gateway.url)

    assert "_created" not in exposition
    named = families(exposition)
    assert len(named) == len(set(named))
    assert metric_value(exposition, "gateway_requests_total") == 2


def test_metrics_describe_the_process_and_the_build(gateways: Gateways) -> None:
    gateway = gateways.start(gateway_config())

    exposition = scrape(gateway.url)

    for series in PROCESS_SERIES:
        assert metric_value(exposition, series) > 0, series
    assert metric_value(exposition, "gateway_build_info", version=__version__) == 1
    assert metric_value(exposition, "python_info") == 1


def test_the_overhead_histogram_holds_the_figure_of_the_header(
    upstream: FakeUpstream, gateways: Gateways
) -> None:
    gateway = gateways.start(gateway_config([entry("vision", upstream, upstream_model="up")]))

    reply = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat_body("vision"), timeout=10)
    exposition = scrape(gateway.url)

    header_s = float(reply.headers["x-gateway-overhead-ms"]) / 1000
    labels = {"api": "chat", "model": "vision", "provider": "openai"}
    assert metric_value(exposition, "gateway_overhead_seconds_count", **labels) == 1
    assert metric_value(exposition, "gateway_overhead_seconds_sum", **labels) == pytest.approx(
        header_s, abs=1e-6
    )


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def rss_bytes(pid: int) -> int:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * 4096


def test_with_workers_process_series_add_up_every_worker(
    gateways: Gateways, tmp_path: Path
) -> None:
    gateway = gateways.start(gateway_config(), workers=2, env={"TMPDIR": str(tmp_path)})
    [metrics_dir] = tmp_path.glob("vision-gateway-metrics-*")
    workers = sorted(int(path.stem) for path in metrics_dir.glob("*.worker"))

    exposition = scrape(gateway.url)
    own = [rss_bytes(pid) for pid in workers]

    assert len(workers) == 2
    assert [parent_of(pid) for pid in workers] == [gateway.process.pid] * 2
    assert "_created" not in exposition
    assert metric_value(exposition, "process_resident_memory_bytes") == pytest.approx(
        sum(own), rel=0.1
    )
    assert metric_value(exposition, "process_start_time_seconds") > 0
    assert metric_value(exposition, "gateway_build_info", version=__version__) == 1


def access_lines(
    gateway: GatewayProcess, at_least: int = 1, agent: str | None = None
) -> list[dict[str, object]]:
    """The access lines so far (of requests from `agent`, if given), once there are
    `at_least` (a line is written when its response has been sent, a moment after the client
    has it)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [r for r in gateway.log_records() if r.get("logger") == "app.access"]
        lines = [r for r in lines if agent is None or r.get("user_agent") == agent]
        if len(lines) >= at_least or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def test_probes_are_logged_at_debug_and_requests_say_who_asked(gateways: Gateways) -> None:
    gateway = gateways.start(gateway_config())
    debug = gateways.start(gateway_config(), log_level="debug")
    agent = {"user-agent": "probe-tester/1.0"}
    for url in (gateway.url, debug.url):
        for path in ("/health", "/ready", "/metrics"):
            httpx.get(url + path, headers=agent, timeout=5)
        httpx.get(f"{url}/v1/models", headers=agent, timeout=5)

    [models] = access_lines(gateway)
    ours = [line for line in access_lines(debug, 9) if line.get("user_agent") == "probe-tester/1.0"]

    assert models["path"] == "/v1/models"
    assert models["level"] == "info"
    assert models["client"] == "127.0.0.1"
    assert models["user_agent"] == "probe-tester/1.0"
    assert [(line["path"], line["level"]) for line in ours] == [
        ("/health", "debug"),
        ("/ready", "debug"),
        ("/metrics", "debug"),
        ("/v1/models", "info"),
    ]


@pytest.mark.parametrize(
    ("trusted", "forwarded", "client"),
    [
        pytest.param([], "203.0.113.9", "127.0.0.1", id="no proxy trusted"),
        pytest.param(["127.0.0.0/8"], "203.0.113.9", "203.0.113.9", id="one proxy"),
        pytest.param(
            ["127.0.0.1", "10.0.0.0/8"],
            "198.51.100.1, 203.0.113.9, 10.1.2.3",
            "203.0.113.9",
            id="a chain: what the client claimed is left of it",
        ),
        pytest.param(["10.0.0.0/8"], "203.0.113.9", "127.0.0.1", id="peer not trusted"),
    ],
)
def test_the_client_behind_trusted_proxies_is_the_forwarded_address(
    gateways: Gateways, trusted: list[str], forwarded: str, client: str
) -> None:
    gateway = gateways.start(gateway_config(server={"trusted_proxies": trusted}))

    httpx.get(f"{gateway.url}/v1/models", headers={"x-forwarded-for": forwarded}, timeout=5)

    [line] = access_lines(gateway)
    assert line["client"] == client


def test_text_lines_name_the_path_when_no_model_is_known(gateways: Gateways) -> None:
    config = gateway_config(server={"log_format": "text", "api_keys": ["gw-text-format-key"]})
    gateway = gateways.start(config)

    httpx.post(f"{gateway.url}/v1/chat/completions", json=chat_body("inspect"), timeout=5)
    headers = {"user-agent": "curl/8.5.0", "authorization": "Bearer gw-text-format-key"}
    httpx.get(f"{gateway.url}/v1/models", headers=headers, timeout=5)

    deadline = time.monotonic() + 5
    lines: list[str] = []
    while len(lines) < 2 and time.monotonic() < deadline:
        lines = [line for line in gateway.log_text().splitlines() if " app.access: " in line]
    assert len(lines) == 2
    refused, listed = (line.split(" app.access: ", 1)[1] for line in lines)
    assert re.fullmatch(
        r'POST /v1/chat/completions -> 401 in [\d.]+ ms from 127\.0\.0\.1 "python-httpx/[\d.]+"',
        refused,
    )
    assert re.fullmatch(
        r'GET /v1/models -> 200 in [\d.]+ ms from 127\.0\.0\.1 "curl/8\.5\.0"', listed
    )
