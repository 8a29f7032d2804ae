"""Running one scenario: check the target answers right, warm it up, then measure it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench.client import Exchange, build_request
from bench.load import Load, LoadResult, fetch_once, run_load
from bench.procs import (
    HOST,
    Service,
    machine_busy_seconds,
    own_cpu_seconds,
    start_gateway,
)
from bench.profile import Profiler
from bench.scenarios import CHAT_PATH, Scenario
from bench.stats import percentile_ms
from bench.wrk import INSTALL_HINT, WrkResult, run_wrk, wrk_path


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
class Measurement:
    """One run against one target; CPU and memory figures are for the measured window only."""

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
    mock_cpu_s: float = 0.0
    driver_cpu_s: float = 0.0  # the load generator: this process and wrk
    other_cpu_s: float = 0.0  # everything else the machine ran meanwhile: noise
    gateway_cpu_s: float | None = None
    gateway_system_cpu_s: float | None = None  # the kernel's share: mostly socket calls
    gateway_peak_rss_bytes: int | None = None
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class ScenarioResult:
    scenario: Scenario
    direct: Measurement
    gateway: Measurement
    profile: list[tuple[float, float, str]] | None = None


def _problem(scenario: Scenario, exchange: Exchange) -> str | None:
    if exchange.status != 200:
        return f"HTTP {exchange.status}"
    if exchange.error is not None:
        return exchange.error
    if scenario.stream:
        if exchange.tokens != scenario.chunks:
            return f"{exchange.tokens} content chunks, not {scenario.chunks}"
        return None
    try:
        reply = orjson.loads(exchange.body)
        content = reply["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, LookupError, TypeError):
        return "not a chat.completion"
    return None if reply.get("object") == "chat.completion" and content else "no content"


async def _check(scenario: Scenario, port: int, request: bytes, target: str) -> None:
    """One request first: a target that answers wrongly would make every figure meaningless."""
    exchange = await fetch_once(HOST, port, request, streaming=scenario.stream)
    problem = _problem(scenario, exchange)
    if problem:
        excerpt = bytes(exchange.body[:500]).decode(errors="replace")
        raise RuntimeError(f"{scenario.key}: the {target} answered wrongly ({problem}): {excerpt}")


async def _drive(
    scenario: Scenario, port: int, body: bytes, duration_s: float, driver: str
) -> LoadResult | WrkResult:
    if driver == "wrk" and not scenario.stream:
        return await run_wrk(
            f"http://{HOST}:{port}{CHAT_PATH}",
            body,
            concurrency=scenario.concurrency,
            duration_s=duration_s,
        )
    request = build_request(HOST, port, CHAT_PATH, body, {})
    return await run_load(
        Load(
            HOST,
            port,
            request,
            scenario.concurrency,
            duration_s,
            streaming=scenario.stream,
            expected_tokens=scenario.chunks,
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
        errors=result.errors,
    )


@dataclass(frozen=True)
class _Clocks:
    machine: float
    driver: float
    mock: float
    gateway: float
    gateway_system: float

    @classmethod
    def read(cls, mock: Service, gateway: Service | None) -> _Clocks:
        return cls(
            machine_busy_seconds(),
            own_cpu_seconds(),
            mock.cpu_seconds(),
            gateway.cpu_seconds() if gateway else 0.0,
            gateway.system_cpu_seconds() if gateway else 0.0,
        )


def _account(measurement: Measurement, before: _Clocks, after: _Clocks) -> None:
    measurement.mock_cpu_s = after.mock - before.mock
    measurement.driver_cpu_s = after.driver - before.driver
    gateway = after.gateway - before.gateway
    ours = measurement.mock_cpu_s + measurement.driver_cpu_s + gateway
    measurement.other_cpu_s = max(0.0, after.machine - before.machine - ours)
    if measurement.target == "gateway":
        measurement.gateway_cpu_s = gateway
        measurement.gateway_system_cpu_s = after.gateway_system - before.gateway_system


async def measure(
    scenario: Scenario,
    settings: Settings,
    mock: Service,
    target: Service | None,
    profiler: Profiler | None = None,
) -> Measurement:
    """Check, warm up, then measure `scenario` against `target` (None: the mock directly)."""
    port = target.port if target else mock.port
    name = "direct" if target is None else "gateway"
    body = scenario.body(through_gateway=target is not None)
    driver = "asyncio" if scenario.stream else settings.driver
    duration = scenario.duration_s or settings.duration_s
    await _check(scenario, port, build_request(HOST, port, CHAT_PATH, body, {}), name)
    if settings.warmup_s > 0:
        await _drive(scenario, port, body, settings.warmup_s, driver)
    if profiler is not None:
        profiler.start(duration)
    before = _Clocks.read(mock, target)
    result = await _drive(scenario, port, body, duration, driver)
    after = _Clocks.read(mock, target)
    measurement = _measurement(name, result)
    _account(measurement, before, after)
    if target is not None:
        measurement.gateway_peak_rss_bytes = target.peak_rss_bytes()
    return measurement


async def run_scenario(scenario: Scenario, settings: Settings, mock: Service) -> ScenarioResult:
    """The scenario straight at the mock, then through a gateway started for it alone."""
    direct = await measure(scenario, settings, mock, None)
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
    return ScenarioResult(scenario, direct, through, top)


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
