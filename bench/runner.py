"""Running one scenario: check the target answers right, warm it up, then measure it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.answers import problem_with
from bench.load import Load, LoadResult, fetch_once, run_load
from bench.probe import HealthFigures, HealthProbe, health_figures
from bench.procs import (
    HOST,
    Service,
    machine_busy_seconds,
    own_cpu_seconds,
    start_gateway,
    start_relay,
)
from bench.profile import Profiler
from bench.scenarios import Requests, Scenario
from bench.stats import percentile_ms
from bench.wrk import INSTALL_HINT, WrkResult, run_wrk, wrk_path

IDLE_PROBE_S = 3.0  # how long /health is timed on the idle gateway, for comparison


@dataclass(frozen=True)
class Settings:
    """How long to run, with which driver, and where the gateway's files go."""

    root: Path
    work: Path
    gateway_config: Path
    duration_s: float
    warmup_s: float
    driver: str  # "wrk" or "asyncio": the driver for non-streamed scenarios
    profile: bool = False


@dataclass
class Worker:
    """One worker process of the target: its CPU time over the measured run and its peak
    resident memory (VmHWM) after it."""

    pid: int
    cpu_s: float
    peak_rss_bytes: int | None


@dataclass
class Measurement:
    """One run against one target; CPU and memory figures are for the measured window only.

    The `gateway_*` figures are the measured server's (the gateway's, or in a comparison the
    other proxy's), summed over its processes; its peak RSS is its largest worker's.
    """

    target: str
    driver: str
    ok: int
    failed: int
    incomplete: int
    elapsed_s: float
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None = None
    ttft_p99_ms: float | None = None
    events: int = 0
    tokens: int = 0  # the content events among `events` (Responses: the text deltas)
    mock_cpu_s: float = 0.0
    driver_cpu_s: float = 0.0  # the load generator: this process and wrk
    other_cpu_s: float = 0.0  # everything else the machine ran meanwhile: noise
    gateway_cpu_s: float | None = None
    gateway_system_cpu_s: float | None = None  # the kernel's share: mostly socket calls
    gateway_peak_rss_bytes: int | None = None
    workers: list[Worker] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    check_error: str | None = None  # the check request's answer was wrong (and measured anyway)
    health_idle: HealthFigures | None = None  # GET /health on the gateway before any load
    health_loaded: HealthFigures | None = None  # ... and during the measured run


@dataclass
class ScenarioResult:
    scenario: Scenario
    direct: Measurement
    gateway: Measurement
    profile: list[tuple[float, float, str]] | None = None
    relay: Measurement | None = None  # a bare TCP relay to the mock, with `relay_floor`


async def _check(scenario: Scenario, port: int, requests: Requests, target: str) -> str | None:
    """One request first: a target that answers wrongly would make every figure meaningless.
    Returns what was wrong, or None."""
    exchange = await fetch_once(
        HOST, port, requests.first, streaming=scenario.stream, framing=requests.framing
    )
    problem = problem_with(scenario, exchange, requests.framing)
    if problem:
        excerpt = bytes(exchange.body[:500]).decode(errors="replace")
        return f"{scenario.key}: the {target} answered wrongly ({problem}): {excerpt}"
    return None


async def _drive(
    scenario: Scenario, port: int, requests: Requests, duration_s: float, driver: str, gateway: bool
) -> LoadResult | WrkResult:
    if driver == "wrk" and not scenario.stream and not scenario.varies:
        return await run_wrk(
            f"http://{HOST}:{port}{scenario.path(through_gateway=gateway)}",
            scenario.body(through_gateway=gateway),
            concurrency=scenario.concurrency,
            duration_s=duration_s,
            headers=scenario.headers(through_gateway=gateway),
        )
    return await run_load(
        Load(
            HOST,
            port,
            requests.first,
            scenario.concurrency,
            duration_s,
            streaming=scenario.stream,
            expected_tokens=scenario.chunks,
            framing=requests.framing,
            next_request=requests.next,
        )
    )


def _measurement(target: str, result: LoadResult | WrkResult) -> Measurement:
    if isinstance(result, WrkResult):
        p50, p99 = result.p50_s * 1000, result.p99_s * 1000
        return Measurement(
            target,
            "wrk",
            result.ok,
            result.failed,
            0,
            result.elapsed_s,
            result.rate,
            p50,
            p99,
            errors=result.errors,
        )
    return Measurement(
        target,
        "asyncio",
        result.ok,
        result.failed,
        result.incomplete,
        result.elapsed_s,
        result.rate,
        percentile_ms(result.latencies_s, 50),
        percentile_ms(result.latencies_s, 99),
        percentile_ms(result.ttfts_s, 50),
        percentile_ms(result.ttfts_s, 99),
        events=result.events,
        tokens=result.tokens,
        errors=result.errors,
    )


@dataclass(frozen=True)
class Clocks:
    machine: float
    driver: float
    mock: float
    gateway: float  # the target's processes, all of them
    gateway_system: float
    workers: dict[int, float]  # each of the target's processes, by pid

    @classmethod
    def read(cls, mock: Service, gateway: Service | None) -> Clocks:
        tree = gateway.tree_cpu() if gateway else {}
        return cls(
            machine_busy_seconds(),
            own_cpu_seconds(),
            mock.cpu_seconds(),
            sum(user + system for user, system in tree.values()),
            sum(system for _, system in tree.values()),
            {pid: user + system for pid, (user, system) in tree.items()},
        )


def _account(
    measurement: Measurement, before: Clocks, after: Clocks, target: Service | None
) -> None:
    measurement.mock_cpu_s = after.mock - before.mock
    measurement.driver_cpu_s = after.driver - before.driver
    gateway = after.gateway - before.gateway
    ours = measurement.mock_cpu_s + measurement.driver_cpu_s + gateway
    measurement.other_cpu_s = max(0.0, after.machine - before.machine - ours)
    if target is not None:
        measurement.gateway_cpu_s = gateway
        measurement.gateway_system_cpu_s = after.gateway_system - before.gateway_system
        peaks = target.worker_peak_rss()
        measurement.gateway_peak_rss_bytes = max(peaks.values(), default=None)
        measurement.workers = [
            Worker(pid, after.workers.get(pid, 0.0) - before.workers.get(pid, 0.0), peak)
            for pid, peak in peaks.items()
        ]


async def measure(
    scenario: Scenario,
    settings: Settings,
    mock: Service,
    target: Service | None,
    profiler: Profiler | None = None,
    *,
    name: str | None = None,
    strict: bool = True,
    transparent: bool = False,
) -> Measurement:
    """Check, warm up, then measure `scenario` against `target` (None: the mock directly).

    `target` gets what the gateway gets (its model names), unless it is `transparent` (a
    relay to the mock): then what the mock gets. A wrong answer to the check request raises,
    unless not `strict`: then it is recorded in the measurement, which goes on."""
    port = target.port if target else mock.port
    gateway = target is not None and not transparent
    name = name or ("gateway" if gateway else "relay" if target else "direct")
    requests = scenario.requests(HOST, port, through_gateway=gateway)
    driver = "asyncio" if scenario.stream or scenario.varies else settings.driver
    duration = min(scenario.duration_s or settings.duration_s, settings.duration_s)
    wrong = await _check(scenario, port, requests, name)
    if wrong and strict:
        raise RuntimeError(wrong)
    probe = await HealthProbe.start(port) if gateway and scenario.probe_health else None
    try:
        if probe is not None:
            idle_start = time.monotonic()
            await asyncio.sleep(IDLE_PROBE_S)
            idle_end = time.monotonic()
        if settings.warmup_s > 0:
            await _drive(scenario, port, requests, settings.warmup_s, driver, gateway)
        if profiler is not None:
            profiler.start(duration)
        before = Clocks.read(mock, target)
        started = time.monotonic()
        result = await _drive(scenario, port, requests, duration, driver, gateway)
        ended = time.monotonic()
        after = Clocks.read(mock, target)
        samples = await probe.stop() if probe is not None else None
    finally:
        if probe is not None:
            await probe.kill()
    measurement = _measurement(name, result)
    measurement.check_error = wrong
    _account(measurement, before, after, target)
    if samples is not None:
        measurement.health_idle = health_figures(samples, idle_start, idle_end)
        measurement.health_loaded = health_figures(samples, started, ended)
    return measurement


async def run_scenario(scenario: Scenario, settings: Settings, mock: Service) -> ScenarioResult:
    """The scenario straight at the mock, then through a gateway started for it alone."""
    direct = await measure(scenario, settings, mock, None)
    return await run_through_gateway(scenario, settings, mock, direct)


async def run_through_gateway(
    scenario: Scenario, settings: Settings, mock: Service, direct: Measurement
) -> ScenarioResult:
    """The scenario through a gateway started for it alone, next to a `direct` measurement
    already made."""
    log = settings.work / f"gateway-{scenario.key}.log"
    gateway = await start_gateway(settings.root, settings.gateway_config, log)
    profiler = (
        Profiler(gateway.pid, settings.work / f"profile-{scenario.key}.txt")
        if settings.profile
        else None
    )
    try:
        through = await measure(scenario, settings, mock, gateway, profiler)
        top = profiler.finish() if profiler is not None else None
    finally:
        gateway.stop()
    relay = await measure_relay(scenario, settings, mock) if scenario.relay_floor else None
    return ScenarioResult(scenario, direct, through, top, relay)


async def measure_relay(scenario: Scenario, settings: Settings, mock: Service) -> Measurement:
    """`scenario` through a bare TCP relay to the mock: the cost of one more hop alone."""
    relay = await start_relay(settings.root, settings.work / f"relay-{scenario.key}.log", mock)
    try:
        return await measure(scenario, settings, mock, relay, transparent=True)
    finally:
        relay.stop()


def default_driver(requested: str) -> str:
    """`wrk` when asked for or available; otherwise the asyncio driver, saying why."""
    if requested == "asyncio":
        return "asyncio"
    if wrk_path() is not None:
        return "wrk"
    if requested == "wrk":
        raise RuntimeError(INSTALL_HINT)
    print(
        "note: wrk is not installed (apt-get install -y wrk); non-streamed scenarios use the "
        "asyncio driver, which costs more CPU on the shared machine"
    )
    return "asyncio"
