"""`soak`: 1,000 streams held open for 60 s through one gateway worker, then a look at what is
left: file descriptors and resident memory must come back down, not keep growing.

Each stream is 61 content chunks 1 s apart (60 s). The gateway is sampled every second: open
fds (`/proc/<pid>/fd`), how many of them are sockets to the mock (upstream connections), and
VmRSS. After the streams end the client closes its connections and the sampling goes on for
10 s; then, since the gateway keeps idle upstream connections for a keep-alive period (aiohttp,
30 s), it goes on until the fds are back at their baseline, for at most `DRAIN_MAX_S`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from dataclasses import dataclass

from bench.client import Connection, Exchange, build_request
from bench.load import fetch_once, open_connections
from bench.outcome import Check, SpecialResult, fmt, row
from bench.payloads import IMAGE_URL, MODEL_PREFIX, chat_body, model_name
from bench.probe import HealthFigures, HealthProbe, health_figures
from bench.procs import HOST, Service, sockets_to, start_gateway
from bench.runner import Clocks, Settings
from bench.scenarios import CHAT_PATH, Special
from bench.stats import percentile_ms

STREAMS = 1000
CHUNKS = 61
DELAY_MS = 1000.0
GRACE_S = 60.0  # beyond the streams' length, before unfinished ones are given up
AFTER_S = 10  # seconds sampled after the streams end
START_S = 5.0
STEADY_FROM_S, STEADY_TO_S = 10.0, 55.0  # all streams open, none starting or ending
DRAIN_MAX_S = 75.0  # at most this long after the end, waiting for the fds to come back
FD_TOLERANCE = 5
RSS_TOLERANCE_BYTES = 64 * 1024  # "not growing": at most a few pages more
MB = 2**20


@dataclass(frozen=True)
class Sample:
    """The gateway at one moment; `t` in seconds from the streams' start."""

    t: float
    fds: int
    upstream_sockets: int
    rss_bytes: int
    open_streams: int
    cpu_s: float  # the gateway's CPU time so far


def _sample(gateway: Service, mock_port: int, started: float, open_streams: int) -> Sample:
    return Sample(
        time.monotonic() - started,
        gateway.open_fds(),
        sockets_to(gateway.pid, mock_port),
        gateway.rss_bytes(),
        open_streams,
        gateway.cpu_seconds(),
    )


def steady_cpu(during: list[Sample]) -> tuple[float, float] | None:
    """Gateway CPU (cores, and µs per relayed chunk) between `STEADY_FROM_S` and
    `STEADY_TO_S`, when every stream is open and sends one chunk a second: the relaying alone,
    without the start. Chunks are counted as open streams times seconds."""
    window = [s for s in during if STEADY_FROM_S <= s.t <= STEADY_TO_S]
    if len(window) < 2:
        return None
    first, last = window[0], window[-1]
    seconds = last.t - first.t
    chunks = sum(
        (b.t - a.t) * a.open_streams * 1000 / DELAY_MS for a, b in itertools.pairwise(window)
    )
    cpu = last.cpu_s - first.cpu_s
    return cpu / seconds, cpu * 1e6 / chunks if chunks else 0.0


async def _open(port: int) -> list[Connection]:
    try:
        return await open_connections(HOST, port, STREAMS, streaming=True)
    except OSError as exc:
        raise RuntimeError(f"soak: could not open {STREAMS} connections: {exc}") from None


@dataclass
class _Run:
    baseline: Sample
    during: list[Sample]
    after: list[Sample]
    exchanges: list[Exchange]
    started: float
    ended: float
    cpu_s: float
    start_cpu_s: float | None  # in the first `START_S` seconds: accepting and starting streams
    peak_rss_bytes: int
    health: HealthFigures
    health_settled: HealthFigures  # from `START_S` on: all streams started
    drained_after_s: float | None


async def _soak(gateway: Service, mock: Service) -> _Run:
    port = gateway.port
    check = chat_body(MODEL_PREFIX + model_name(2, 0), image_url=IMAGE_URL, stream=True)
    exchange = await fetch_once(
        HOST, port, build_request(HOST, port, CHAT_PATH, check, {}), streaming=True
    )
    if exchange.status != 200 or exchange.error or exchange.tokens != 2:
        raise RuntimeError(
            f"soak: the gateway answered wrongly: {exchange.error or exchange.status}"
        )
    await asyncio.sleep(1.0)
    baseline = _sample(gateway, mock.port, time.monotonic(), 0)
    body = chat_body(MODEL_PREFIX + model_name(CHUNKS, DELAY_MS), image_url=IMAGE_URL, stream=True)
    request = build_request(HOST, port, CHAT_PATH, body, {})
    probe = await HealthProbe.start(port)
    try:
        connections = await _open(port)
        before = Clocks.read(mock, gateway)
        started = time.monotonic()
        tasks = [asyncio.create_task(c.send(request)) for c in connections]
        deadline = started + CHUNKS * DELAY_MS / 1000 + GRACE_S
        during: list[Sample] = []
        while time.monotonic() < deadline:
            _done, running = await asyncio.wait(tasks, timeout=1.0)
            if not running:
                break
            during.append(_sample(gateway, mock.port, started, len(running)))
        for connection in connections:  # ends whatever is still running, as a failure
            connection.close()
        await asyncio.wait(tasks)
        ended = time.monotonic()
        after_clocks = Clocks.read(mock, gateway)
        samples = await probe.stop()
        health = health_figures(samples, started, ended)
        settled = health_figures(samples, started + START_S, ended)
    finally:
        await probe.kill()
    after: list[Sample] = [_sample(gateway, mock.port, started, 0)]
    drained_after_s = None
    while time.monotonic() - ended < DRAIN_MAX_S:
        await asyncio.sleep(max(0.0, ended + len(after) - time.monotonic()))
        sample = _sample(gateway, mock.port, started, 0)
        after.append(sample)
        back = sample.fds <= baseline.fds + FD_TOLERANCE
        if back and drained_after_s is None:
            drained_after_s = sample.t - (ended - started)
        if back and len(after) > AFTER_S:
            break
    return _Run(
        baseline=baseline,
        during=during,
        after=after,
        exchanges=[task.result() for task in tasks],
        started=started,
        ended=ended,
        cpu_s=after_clocks.gateway - before.gateway,
        start_cpu_s=next((s.cpu_s - before.gateway for s in during if s.t >= START_S), None),
        peak_rss_bytes=gateway.peak_rss_bytes(),
        health=health,
        health_settled=settled,
        drained_after_s=drained_after_s,
    )


async def run_soak(scenario: Special, settings: Settings, mock: Service) -> SpecialResult:
    log = settings.work / f"gateway-{scenario.key}.log"
    gateway = await start_gateway(settings.root, settings.gateway_config, log)
    try:
        run = await _soak(gateway, mock)
    finally:
        gateway.stop()
    return _result(scenario, run)


def _result(scenario: Special, run: _Run) -> SpecialResult:
    completed = [e for e in run.exchanges if not e.error and e.tokens == CHUNKS]
    incomplete = len(run.exchanges) - len(completed)
    errors: dict[str, int] = {}
    for exchange in run.exchanges:
        if exchange.error or exchange.tokens != CHUNKS:
            reason = (exchange.error or f"{exchange.tokens} of {CHUNKS} chunks")[:120]
            errors[reason] = errors.get(reason, 0) + 1
    events = sum(e.events for e in completed)
    base = run.baseline
    peak_fds = max((s.fds for s in run.during), default=base.fds)
    end = run.after[0]
    at = {round(s.t - (run.ended - run.started)): s for s in run.after}
    tenth = at.get(AFTER_S, run.after[min(AFTER_S, len(run.after) - 1)])
    last_three = [s.rss_bytes for s in run.after[max(0, AFTER_S - 2) : AFTER_S + 1]]
    rss_growth = max((b - a for a, b in itertools.pairwise(last_three)), default=0)
    latencies = [e.latency_s for e in completed]
    p50_s = None if not latencies else (percentile_ms(latencies, 50) or 0) / 1000
    ttft_p99 = percentile_ms([t for e in completed if (t := e.ttft_s) is not None], 99)
    us_per_chunk = run.cpu_s * 1e6 / events if events else None
    most_open = max((s.open_streams for s in run.during), default=0)
    steady = steady_cpu(run.during)
    settled = run.health_settled
    not_pooled = tenth.fds - tenth.upstream_sockets
    base_not_pooled = base.fds - base.upstream_sockets
    figures: dict[str, object] = {
        "streams": STREAMS,
        "chunks": CHUNKS,
        "delay_ms": DELAY_MS,
        "completed": len(completed),
        "incomplete": incomplete,
        "errors": errors,
        "elapsed_s": run.ended - run.started,
        "latency_p50_s": p50_s,
        "ttft_p99_ms": ttft_p99,
        "max_open_streams": most_open,
        "gateway_cpu_s": run.cpu_s,
        "gateway_cpu_us_per_chunk": us_per_chunk,
        "gateway_cpu_first_5s": run.start_cpu_s,
        "gateway_steady_cores": steady[0] if steady else None,
        "gateway_steady_cpu_us_per_chunk": steady[1] if steady else None,
        "gateway_peak_rss_mb": run.peak_rss_bytes / MB,
        "fds_baseline": base.fds,
        "fds_peak": peak_fds,
        "fds_after_10s": tenth.fds,
        "upstream_sockets_after_10s": tenth.upstream_sockets,
        "fds_back_to_baseline_after_s": run.drained_after_s,
        "rss_growth_bytes_last_samples": rss_growth,
        "baseline": dataclasses.asdict(base),
        "during": [dataclasses.asdict(s) for s in run.during],
        "after": [dataclasses.asdict(s) for s in run.after],
        "health_loaded": dataclasses.asdict(run.health),
        "health_after_start": dataclasses.asdict(run.health_settled),
    }
    rss = [f"{s.rss_bytes / MB:.1f}" for s in run.after[: AFTER_S + 1]]
    lines = [
        f"    {STREAMS} streams of {CHUNKS} chunks {DELAY_MS:g} ms apart, one gateway worker, "
        f"{run.ended - run.started:.1f} s",
        row("completed / incomplete", f"{len(completed)} / {incomplete}"),
        row("most streams open at once", str(most_open), "sampled each second"),
        row("stream latency p50 s", fmt(p50_s, 2)),
        row("TTFT p99 ms", fmt(ttft_p99, 1)),
        row("gateway CPU us/chunk, whole run", fmt(us_per_chunk, 1), "start included"),
        row(
            f"gateway CPU s, first {START_S:g} s",
            fmt(run.start_cpu_s, 2),
            f"accepting and starting {STREAMS} streams",
        ),
        row(
            "steady: cores, us/chunk",
            f"{fmt(steady[0] if steady else None, 3)}, {fmt(steady[1] if steady else None, 1)}",
            f"{STEADY_FROM_S:g}-{STEADY_TO_S:g} s, every stream open",
        ),
        row(
            "gateway fds before / peak",
            f"{base.fds} / {peak_fds}",
            f"{base.upstream_sockets} upstream before",
        ),
        row("gateway fds at the end", str(end.fds), f"{end.upstream_sockets} to the mock"),
        row(
            "gateway fds 10 s after",
            str(tenth.fds),
            f"{tenth.upstream_sockets} idle upstream keep-alive; {not_pooled} others "
            f"(baseline {base_not_pooled})",
        ),
        row(
            "fds back to baseline +-5 after",
            "never" if run.drained_after_s is None else f"{run.drained_after_s:.0f} s",
            f"watched for up to {DRAIN_MAX_S:g} s",
        ),
        row(
            "gateway RSS MB before / peak",
            f"{base.rss_bytes / MB:.1f} / {run.peak_rss_bytes / MB:.1f}",
        ),
        f"    gateway RSS MB at the end, then each second: {' '.join(rss)}",
        row(
            "/health p50 / p99 / max ms",
            f"{fmt(run.health.p50_ms)} / {fmt(run.health.p99_ms)} / {fmt(run.health.max_ms)}",
            f"{run.health.samples} probes, {run.health.failed} failed; slowest at "
            f"{fmt(run.health.max_at_s, 1)} s",
        ),
        row(
            f"/health, from {START_S:g} s on",
            f"{fmt(settled.p50_ms)} / {fmt(settled.p99_ms)} / {fmt(settled.max_ms)}",
            "every stream started",
        ),
        "    /health probes over 20 ms after 5 s (s since the start: ms): "
        + (" ".join(f"{t + START_S:.1f}:{ms:.0f}" for t, ms in settled.slow[:24]) or "none"),
    ]
    lines += [f"    stream error: {reason} x{count}" for reason, count in errors.items()]
    checks = [
        Check.of("incomplete streams", "== 0", incomplete, lambda v: v == 0),
        Check.of(
            "fds 10 s after, pool aside",
            f"<= {base_not_pooled + FD_TOLERANCE}",
            not_pooled,
            lambda v: abs(v - base_not_pooled) <= FD_TOLERANCE,
        ),
        Check.of(
            "fds back to baseline, s",
            f"<= {DRAIN_MAX_S:g}",
            run.drained_after_s,
            lambda v: v <= DRAIN_MAX_S,
        ),
        Check.of(
            "RSS growth after the end, KiB",
            f"<= {RSS_TOLERANCE_BYTES // 1024}",
            rss_growth / 1024,
            lambda v: v <= RSS_TOLERANCE_BYTES / 1024,
        ),
        Check.of("gateway peak RSS MB", "< 150", run.peak_rss_bytes / MB, lambda v: v < 150),
    ]
    return SpecialResult(scenario, lines, figures, checks)
