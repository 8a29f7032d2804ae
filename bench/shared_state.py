"""`redis-state`: the small request under a key `rpm` and a model `rpm`, with the gateway's
state in process memory and then in a local `redis-server` the bench starts itself."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bench.outcome import Check, SpecialResult, fmt, row
from bench.payloads import write_gateway_config
from bench.procs import HOST, Service, free_port, spawn, start_gateway
from bench.runner import Measurement, Settings, measure
from bench.scenarios import Scenario, Special
from bench.stats import ratio

API_KEY = "bench-gateway-key"
RPM = 1_000_000_000  # never reached: every request is counted, none refused
GOAL = 0.9  # Redis mode's requests/s over memory mode's
REDIS_START_S = 10.0
SMALL_KEYED = Scenario(
    "redis-state",
    "small request with a gateway key, key and model rpm",
    32,
    False,
    16,
    api_key=API_KEY,
)


async def start_redis(root: Path, work: Path) -> Service:
    """A `redis-server` without persistence on a free loopback port, once it answers PING."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not installed; apt-get install -y redis-server")
    port = free_port()
    args = [executable, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    service = Service(
        "redis-server",
        spawn([*args, "--dir", str(work)], work / "redis.log", root),
        port,
        work / "redis.log",
    )
    deadline = time.monotonic() + REDIS_START_S
    while not await _pong(port):
        if service.process.poll() is not None or time.monotonic() > deadline:
            service.stop()
            raise RuntimeError(f"redis-server did not start; its log ends:\n{service.log_tail()}")
        await asyncio.sleep(0.05)
    return service


async def _pong(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return False
    try:
        writer.write(b"PING\r\n")
        return await reader.readline() == b"+PONG\r\n"
    finally:
        writer.close()


@dataclass
class Mode:
    """One state backend's runs, summed."""

    ok: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    gateway_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    redis_cpu_s: float = 0.0

    def add(self, measurement: Measurement, redis_cpu_s: float) -> None:
        self.ok += measurement.ok
        self.failed += measurement.failed
        self.elapsed_s += measurement.elapsed_s
        self.gateway_cpu_s += measurement.gateway_cpu_s or 0.0
        self.other_cpu_s += measurement.other_cpu_s
        self.redis_cpu_s += redis_cpu_s

    @property
    def rate(self) -> float | None:
        return ratio(self.ok, self.elapsed_s)

    @property
    def cpu_ms(self) -> float | None:
        return ratio(self.gateway_cpu_s * 1000, self.ok + self.failed)

    @property
    def other_cores(self) -> float | None:
        return ratio(self.other_cpu_s, self.elapsed_s)


async def _measure(
    settings: Settings, mock: Service, mode: str, redis: Service | None, into: Mode
) -> None:
    """The keyed small request through a fresh gateway, with the Redis CPU seconds it cost."""
    url = f"redis://{HOST}:{redis.port}/0" if redis else None
    config = write_gateway_config(
        settings.work, mock.port, f"gateway-{mode}.yaml", api_key=API_KEY, rpm=RPM, redis_url=url
    )
    gateway = await start_gateway(settings.root, config, settings.work / f"gateway-{mode}.log")
    try:
        redis_before = redis.cpu_seconds() if redis else 0.0
        measurement = await measure(SMALL_KEYED, settings, mock, gateway, name=mode)
        into.add(measurement, redis.cpu_seconds() - redis_before if redis else 0.0)
    finally:
        gateway.stop()


async def run_redis_state(scenario: Special, settings: Settings, mock: Service) -> SpecialResult:
    """Memory, Redis, Redis, memory: drift in the machine's other load hits both alike."""
    memory, shared = Mode(), Mode()
    redis = await start_redis(settings.root, settings.work)
    try:
        for mode in ("memory", "redis", "redis", "memory"):
            into, server = (shared, redis) if mode == "redis" else (memory, None)
            await _measure(settings, mock, mode, server, into)
    finally:
        redis.stop()
    rate_ratio = ratio(shared.rate, memory.rate)
    # Warm-up and the check request included: an upper bound.
    redis_ms = ratio(shared.redis_cpu_s * 1000, shared.ok)
    found: dict[str, object] = {
        "memory_requests_per_s": memory.rate,
        "redis_requests_per_s": shared.rate,
        "redis_over_memory_requests_per_s": rate_ratio,
        "memory_gateway_cpu_ms_per_request": memory.cpu_ms,
        "redis_gateway_cpu_ms_per_request": shared.cpu_ms,
        "redis_server_cpu_ms_per_request": redis_ms,
        "memory_other_cores": memory.other_cores,
        "redis_other_cores": shared.other_cores,
        "failed": memory.failed + shared.failed,
    }
    lines = [
        f"    state in memory vs in Redis, key and model rpm, concurrency {scenario.concurrency}",
        row(
            "requests/s",
            f"{fmt(memory.rate, 0)} vs {fmt(shared.rate, 0)}",
            f"ratio {fmt(rate_ratio, 3)}",
        ),
        row("gateway CPU ms/request", f"{fmt(memory.cpu_ms, 3)} vs {fmt(shared.cpu_ms, 3)}"),
        row("redis-server CPU ms/request", fmt(redis_ms, 3), "warm-up included"),
        row("failed", f"{memory.failed} vs {shared.failed}"),
        row("other CPU load, cores", f"{fmt(memory.other_cores)} vs {fmt(shared.other_cores)}"),
    ]
    failed = memory.failed + shared.failed
    checks = [
        Check.of("redis requests/s over memory's", f">= {GOAL}", rate_ratio, lambda v: v >= GOAL),
        Check.of("failed requests (both)", "== 0", failed, lambda v: v == 0),
    ]
    return SpecialResult(scenario, lines, found, checks)
