"""Scenarios with their own procedure: `jobs200`, `takeoff-stream`, `responses` and `soak`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bench.jobs import run_jobs200
from bench.outcome import Check, SpecialResult, fmt, row
from bench.procs import Service
from bench.report import figures
from bench.responses_api import run_responses
from bench.runner import Settings, run_scenario
from bench.scenarios import OPENAI_STREAM50, TAKEOFF_STREAM, Special
from bench.shared_state import run_redis_state
from bench.soak import run_soak
from bench.stats import ratio


async def run_takeoff_stream(scenario: Special, settings: Settings, mock: Service) -> SpecialResult:
    """Takeoff streams (multipart image in, raw-text SSE back) and OpenAI-style streams of the
    same length with the same image, each direct and through a fresh gateway."""
    takeoff = await run_scenario(TAKEOFF_STREAM, settings, mock)
    openai = await run_scenario(OPENAI_STREAM50, settings, mock)
    found_takeoff, found_openai = figures(takeoff), figures(openai)
    us_takeoff = found_takeoff.get("gateway_cpu_us_per_chunk")
    us_openai = found_openai.get("gateway_cpu_us_per_chunk")
    ms_takeoff = found_takeoff.get("gateway_cpu_ms_per_request")
    ms_openai = found_openai.get("gateway_cpu_ms_per_request")
    rate_ratio = ratio(takeoff.gateway.rate, openai.gateway.rate)
    comparison: dict[str, object] = {
        "takeoff_gateway_streams_per_s": takeoff.gateway.rate,
        "openai_gateway_streams_per_s": openai.gateway.rate,
        "streams_per_s_takeoff_over_openai": rate_ratio,
        "takeoff_gateway_cpu_us_per_chunk": us_takeoff,
        "openai_gateway_cpu_us_per_chunk": us_openai,
        "cpu_per_chunk_takeoff_over_openai": ratio(us_takeoff, us_openai),
        "takeoff_gateway_cpu_ms_per_stream": ms_takeoff,
        "openai_gateway_cpu_ms_per_stream": ms_openai,
    }
    lines = [
        "    through the gateway: Takeoff vs OpenAI-compatible, 50 chunks, concurrency "
        f"{TAKEOFF_STREAM.concurrency}",
        row(
            "streams/s",
            f"{fmt(takeoff.gateway.rate, 1)} vs {fmt(openai.gateway.rate, 1)}",
            f"ratio {fmt(rate_ratio, 3)}",
        ),
        row(
            "gateway CPU us/chunk",
            f"{fmt(us_takeoff, 1)} vs {fmt(us_openai, 1)}",
            f"ratio {fmt(ratio(us_takeoff, us_openai), 3)}",
        ),
        row("gateway CPU ms/stream", f"{fmt(ms_takeoff, 3)} vs {fmt(ms_openai, 3)}"),
    ]
    incomplete = takeoff.gateway.incomplete + openai.gateway.incomplete
    checks = [
        Check.of("incomplete streams (both)", "== 0", incomplete, lambda v: v == 0),
    ]
    return SpecialResult(scenario, lines, comparison, checks, parts=[takeoff, openai])


Runner = Callable[[Special, Settings, Service], Awaitable[SpecialResult]]
RUNNERS: dict[str, Runner] = {
    "redis-state": run_redis_state,
    "jobs200": run_jobs200,
    "takeoff-stream": run_takeoff_stream,
    "responses": run_responses,
    "soak": run_soak,
}


async def run_special(scenario: Special, settings: Settings, mock: Service) -> SpecialResult:
    return await RUNNERS[scenario.key](scenario, settings, mock)
