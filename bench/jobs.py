"""`jobs200`: 200 Masterpiece X jobs pending at once on one gateway worker.

Each job runs 10 s on the mock; the gateway polls `/status/{id}` every `poll_interval_s` (2 s).
The mock logs every poll, so the poll rate and its evenness are measured where they land: about
200 / 2 = 100 polls a second, and no 100 ms bucket far above the even share (10). A /health
probe meanwhile shows whether the worker's event loop stays responsive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from dataclasses import dataclass

import orjson

from bench.client import Connection, Exchange, build_get, build_request
from bench.load import fetch_once, open_connections
from bench.outcome import Check, SpecialResult, fmt, row
from bench.payloads import MPX_MODEL, MPX_POLL_INTERVAL_S, job_body
from bench.probe import HealthFigures, HealthProbe, health_figures
from bench.procs import HOST, Service, start_gateway
from bench.runner import Clocks, Settings
from bench.scenarios import CHAT_PATH, Special
from bench.stats import percentile_ms

JOBS = 200
JOB_S = 10.0
CHECK_JOB_S = 1.0
IDLE_PROBE_S = 2.0
GRACE_S = 60.0  # beyond the job's time, before unfinished requests are given up
BUCKET_S = 0.1
HEALTH_P99_LIMIT_MS = 20.0
RATE_TOLERANCE = 0.2  # the steady poll rate within 20 % of jobs / interval
BURST_FACTOR = 2.5  # no 100 ms bucket above 2.5 times the even share


def _answer(exchange: Exchange) -> str | None:
    """The completion's text, or None when the exchange is not a good chat.completion."""
    if exchange.status != 200 or exchange.error is not None:
        return None
    try:
        reply = orjson.loads(exchange.body)
        content = reply["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, LookupError, TypeError):
        return None
    return content if isinstance(content, str) and content.startswith("mock answer") else None


async def mock_jobs(port: int) -> dict[str, object]:
    """The mock's job counts and poll times since the last call (which they are cleared by)."""
    exchange = await fetch_once(HOST, port, build_get(HOST, port, "/_bench/jobs"), streaming=False)
    if exchange.status != 200:
        raise RuntimeError(f"the mock's /_bench/jobs answered {exchange.status}")
    report: dict[str, object] = orjson.loads(exchange.body)
    return report


async def _send_all(connections: list[Connection], request: bytes) -> list[Exchange]:
    tasks = [asyncio.create_task(c.send(request)) for c in connections]
    _, unfinished = await asyncio.wait(tasks, timeout=JOB_S + GRACE_S)
    for connection in connections:  # a connection still waiting fails its exchange
        connection.close()
    if unfinished:
        await asyncio.wait(unfinished)
    return [task.result() for task in tasks]


@dataclass(frozen=True)
class PollFigures:
    """Rate and evenness of the status polls, from their times on the mock."""

    polls: int
    polls_per_job: float
    steady_polls_per_s: float  # while every job is pending: from one interval in to the job's end
    even_polls_per_bucket: float
    max_polls_per_bucket: int
    empty_buckets_share: float | None  # between the first and the last poll
    first_poll_s: float | None
    polls_per_second: list[int]


def poll_figures(polls: list[float], started: float, ended: float) -> PollFigures:
    relative = sorted(t - started for t in polls)
    steady = [t for t in relative if MPX_POLL_INTERVAL_S <= t < JOB_S]
    seconds = max(1, math.ceil(ended - started))
    per_second = [0] * seconds
    buckets = [0] * (round(seconds / BUCKET_S) + 1)
    for t in relative:
        if 0 <= t < seconds:
            per_second[int(t)] += 1
            buckets[int(t / BUCKET_S)] += 1
    active = (
        buckets[int(relative[0] / BUCKET_S) : int(relative[-1] / BUCKET_S) + 1] if relative else []
    )
    return PollFigures(
        polls=len(relative),
        polls_per_job=len(relative) / JOBS,
        steady_polls_per_s=len(steady) / (JOB_S - MPX_POLL_INTERVAL_S),
        even_polls_per_bucket=JOBS / MPX_POLL_INTERVAL_S * BUCKET_S,
        max_polls_per_bucket=max(buckets, default=0),
        empty_buckets_share=active.count(0) / len(active) if active else None,
        first_poll_s=relative[0] if relative else None,
        polls_per_second=per_second,
    )


async def _open(port: int) -> list[Connection]:
    try:
        return await open_connections(HOST, port, JOBS, streaming=False, keep_body=True)
    except OSError as exc:
        raise RuntimeError(f"jobs200: could not open {JOBS} connections: {exc}") from None


async def run_jobs200(scenario: Special, settings: Settings, mock: Service) -> SpecialResult:
    log = settings.work / f"gateway-{scenario.key}.log"
    gateway = await start_gateway(settings.root, settings.gateway_config, log)
    port = gateway.port
    probe: HealthProbe | None = None
    try:
        check = build_request(HOST, port, CHAT_PATH, job_body(MPX_MODEL, CHECK_JOB_S), {})
        exchange = await fetch_once(HOST, port, check, streaming=False)
        if _answer(exchange) is None:
            excerpt = bytes(exchange.body[:500]).decode(errors="replace")
            raise RuntimeError(f"jobs200: the gateway answered wrongly: {excerpt}")
        await mock_jobs(mock.port)  # clears the check's polls
        probe = await HealthProbe.start(port)
        idle_start = time.monotonic()
        await asyncio.sleep(IDLE_PROBE_S)
        idle_end = time.monotonic()
        request = build_request(HOST, port, CHAT_PATH, job_body(MPX_MODEL, JOB_S), {})
        connections = await _open(port)
        before = Clocks.read(mock, gateway)
        started = time.monotonic()
        exchanges = await _send_all(connections, request)
        ended = time.monotonic()
        after = Clocks.read(mock, gateway)
        board = await mock_jobs(mock.port)
        samples = await probe.stop()
        peak_rss = gateway.peak_rss_bytes()
    finally:
        if probe is not None:
            await probe.kill()
        gateway.stop()
    return _result(
        scenario,
        exchanges,
        board,
        started,
        ended,
        gateway_cpu_s=after.gateway - before.gateway,
        peak_rss_bytes=peak_rss,
        idle=health_figures(samples, idle_start, idle_end),
        loaded=health_figures(samples, started, ended),
    )


def _result(
    scenario: Special,
    exchanges: list[Exchange],
    board: dict[str, object],
    started: float,
    ended: float,
    *,
    gateway_cpu_s: float,
    peak_rss_bytes: int,
    idle: HealthFigures,
    loaded: HealthFigures,
) -> SpecialResult:
    errors: dict[str, int] = {}
    latencies = []
    for exchange in exchanges:
        if _answer(exchange) is not None:
            latencies.append(exchange.latency_s)
            continue
        reason = exchange.error or f"HTTP {exchange.status}: {bytes(exchange.body[:120])!r}"
        errors[reason] = errors.get(reason, 0) + 1
    completed, failed = len(latencies), len(exchanges) - len(latencies)
    raw_polls = board.get("polls")
    polls = poll_figures(
        [float(t) for t in raw_polls] if isinstance(raw_polls, list) else [], started, ended
    )
    expected_rate = JOBS / MPX_POLL_INTERVAL_S
    burst_limit = BURST_FACTOR * polls.even_polls_per_bucket
    p50_ms, max_s = percentile_ms(latencies, 50), max(latencies, default=None)
    cpu_ms_per_poll = gateway_cpu_s * 1000 / max(1, polls.polls)
    rss_mb = peak_rss_bytes / 2**20
    figures: dict[str, object] = {
        "jobs": JOBS,
        "job_s": JOB_S,
        "poll_interval_s": MPX_POLL_INTERVAL_S,
        "completed": completed,
        "failed": failed,
        "errors": errors,
        "elapsed_s": ended - started,
        "latency_p50_s": None if p50_ms is None else p50_ms / 1000,
        "latency_max_s": max_s,
        "mock": {key: value for key, value in board.items() if key != "polls"},
        "polling": dataclasses.asdict(polls),
        "gateway_cpu_s": gateway_cpu_s,
        "gateway_cpu_ms_per_job": gateway_cpu_s * 1000 / JOBS,
        "gateway_cpu_ms_per_poll": cpu_ms_per_poll,
        "gateway_peak_rss_mb": rss_mb,
        "health_idle": dataclasses.asdict(idle),
        "health_loaded": dataclasses.asdict(loaded),
    }
    empty = polls.empty_buckets_share
    lines = [
        f"    {JOBS} non-streamed requests at once, jobs of {JOB_S:g} s, "
        f"poll_interval_s {MPX_POLL_INTERVAL_S:g}",
        row("completed / failed", f"{completed} / {failed}"),
        row(
            "request latency p50 / max s",
            f"{fmt(None if p50_ms is None else p50_ms / 1000)} / {fmt(max_s)}",
        ),
        row("status polls (per job)", f"{polls.polls} ({polls.polls_per_job:.1f})"),
        row(
            "polls/s while all pending",
            fmt(polls.steady_polls_per_s, 1),
            f"{MPX_POLL_INTERVAL_S:g}-{JOB_S:g} s in; expected {expected_rate:g}",
        ),
        row(
            "max polls in a 100 ms bucket",
            str(polls.max_polls_per_bucket),
            f"even spread {polls.even_polls_per_bucket:g}",
        ),
        row(
            "empty 100 ms buckets",
            "-" if empty is None else f"{100 * empty:.0f} %",
            "between the first and the last poll",
        ),
        row("first poll s", fmt(polls.first_poll_s)),
        f"    polls in each second: {' '.join(str(n) for n in polls.polls_per_second)}",
        row("gateway CPU ms/job", fmt(gateway_cpu_s * 1000 / JOBS, 3)),
        row("gateway CPU ms/poll", fmt(cpu_ms_per_poll, 3), "all gateway CPU / polls"),
        row("gateway peak RSS MB", fmt(rss_mb, 1)),
        row("/health p50 / p99 ms, idle", f"{fmt(idle.p50_ms)} / {fmt(idle.p99_ms)}"),
        row(
            "/health p50 / p99 / max ms, jobs",
            f"{fmt(loaded.p50_ms)} / {fmt(loaded.p99_ms)} / {fmt(loaded.max_ms)}",
            f"{loaded.samples} probes, {loaded.failed} failed; slowest at "
            f"{fmt(loaded.max_at_s, 1)} s",
        ),
    ]
    lines += [f"    gateway error: {reason} x{count}" for reason, count in errors.items()]
    mock_problems = {k: board.get(k) for k in ("unauthorized", "unknown") if board.get(k)}
    if mock_problems:
        lines.append(f"    mock saw: {mock_problems}")
    checks = [
        Check.of("jobs completed", f"== {JOBS}", completed, lambda v: v == JOBS),
        Check.of(
            "polls/s while all pending",
            f"{expected_rate * (1 - RATE_TOLERANCE):g}-{expected_rate * (1 + RATE_TOLERANCE):g}",
            polls.steady_polls_per_s,
            lambda v: abs(v - expected_rate) <= RATE_TOLERANCE * expected_rate,
        ),
        Check.of(
            "max polls per 100 ms",
            f"<= {burst_limit:g}",
            polls.max_polls_per_bucket,
            lambda v: v <= burst_limit,
        ),
        Check.of(
            "/health p99 ms during jobs",
            f"< {HEALTH_P99_LIMIT_MS:g}",
            loaded.p99_ms,
            lambda v: v < HEALTH_P99_LIMIT_MS,
        ),
        Check.of("gateway peak RSS MB", "< 150", rss_mb, lambda v: v < 150),
    ]
    return SpecialResult(scenario, lines, figures, checks)
