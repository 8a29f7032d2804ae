"""The benchmark's report: derived figures, the targets, a readable table and a JSON file."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.outcome import SpecialResult
from bench.runner import Measurement, ScenarioResult
from bench.stats import ratio

MB = 1024 * 1024
NOISY_CORES = 0.15  # other processes' load above which a scenario's figures are suspect
Figures = dict[str, float | None]
Result = ScenarioResult | SpecialResult


def figures(result: ScenarioResult) -> Figures:
    """What the table shows beyond the raw counts: per-request costs and gateway/direct ratios."""
    direct, gateway = result.direct, result.gateway
    handled = gateway.ok + gateway.failed
    cpu = gateway.gateway_cpu_s
    found: Figures = {
        "rate_ratio": ratio(gateway.rate, direct.rate),
        "p50_ratio": ratio(gateway.p50_ms, direct.p50_ms),
        "p99_ratio": ratio(gateway.p99_ms, direct.p99_ms),
        "gateway_cpu_ms_per_request": ratio(cpu * 1000, handled) if cpu is not None else None,
        "gateway_system_cpu_share": ratio(gateway.gateway_system_cpu_s, cpu),
        "gateway_peak_rss_mb": (gateway.gateway_peak_rss_bytes or 0) / MB,
        "direct_mock_cpu_ms_per_request": ratio(
            direct.mock_cpu_s * 1000, direct.ok + direct.failed
        ),
        "gateway_mock_cpu_ms_per_request": ratio(gateway.mock_cpu_s * 1000, handled),
        "direct_other_cores": ratio(direct.other_cpu_s, direct.elapsed_s),
        "gateway_other_cores": ratio(gateway.other_cpu_s, gateway.elapsed_s),
    }
    if result.scenario.stream:
        found["gateway_cpu_us_per_chunk"] = ratio(cpu * 1e6, gateway.events) if cpu else None
        found["ttft_p50_ratio"] = ratio(gateway.ttft_p50_ms, direct.ttft_p50_ms)
        found["ttft_p99_ratio"] = ratio(gateway.ttft_p99_ms, direct.ttft_p99_ms)
        if gateway.ttft_p50_ms is not None and direct.ttft_p50_ms is not None:
            found["ttft_p50_added_ms"] = gateway.ttft_p50_ms - direct.ttft_p50_ms
        relay = result.relay
        if relay is not None and relay.ttft_p50_ms is not None and direct.ttft_p50_ms is not None:
            found["relay_ttft_p50_added_ms"] = relay.ttft_p50_ms - direct.ttft_p50_ms
    for window, health in (("idle", gateway.health_idle), ("loaded", gateway.health_loaded)):
        if health is not None:
            found[f"health_{window}_p50_ms"] = health.p50_ms
            found[f"health_{window}_p99_ms"] = health.p99_ms
            found[f"health_{window}_max_ms"] = health.max_ms
    return found


@dataclass(frozen=True)
class Target:
    """A figure the gateway must reach on one worker, checked against one scenario's results."""

    scenario: str
    label: str
    limit: str
    value: Callable[[ScenarioResult], float | None]
    passes: Callable[[float], bool]


TARGETS = (
    Target("small", "gateway requests/s", ">= 1500", lambda r: r.gateway.rate, lambda v: v >= 1500),
    Target(
        "small",
        "gateway CPU ms/request",
        "<= 1.0",
        lambda r: figures(r)["gateway_cpu_ms_per_request"],
        lambda v: v <= 1.0,
    ),
    Target(
        "stream",
        "gateway CPU us/chunk",
        "<= 80",
        lambda r: figures(r)["gateway_cpu_us_per_chunk"],
        lambda v: v <= 80,
    ),
    Target(
        "streams500",
        "streams/s gateway/direct",
        ">= 0.5",
        lambda r: figures(r)["rate_ratio"],
        lambda v: v >= 0.5,
    ),
    Target(
        "streams500",
        "incomplete streams",
        "== 0",
        lambda r: r.gateway.incomplete,
        lambda v: v == 0,
    ),
    Target(
        "ttft",
        "TTFT p50 added ms",
        "<= 1.0",
        lambda r: figures(r).get("ttft_p50_added_ms"),
        lambda v: v <= 1.0,
    ),
    Target("*", "gateway failed requests", "== 0", lambda r: r.gateway.failed, lambda v: v == 0),
    Target(
        "*",
        "gateway peak RSS MB",
        "< 150",
        lambda r: figures(r)["gateway_peak_rss_mb"],
        lambda v: v < 150,
    ),
)


def check_targets(results: list[Result]) -> list[dict[str, object]]:
    """Each target that applies to a scenario that ran, with its value and verdict. A special
    scenario judges its own; the regular measurements it ran get the regular targets."""
    regular = [r for r in results if isinstance(r, ScenarioResult)]
    regular += [part for r in results if isinstance(r, SpecialResult) for part in r.parts]
    checked: list[dict[str, object]] = [
        {
            "scenario": result.scenario.key,
            "target": check.label,
            "limit": check.limit,
            "value": check.value,
            "passed": check.passed,
        }
        for result in results
        if isinstance(result, SpecialResult)
        for check in result.checks
    ]
    for target in TARGETS:
        for result in regular:
            if target.scenario not in ("*", result.scenario.key):
                continue
            value = target.value(result)
            checked.append(
                {
                    "scenario": result.scenario.key,
                    "target": target.label,
                    "limit": target.limit,
                    "value": value,
                    "passed": value is not None and target.passes(value),
                }
            )
    return checked


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _percent(share: float | None) -> float | None:
    return None if share is None else share * 100


def _row(label: str, direct: str, gateway: str, rel: str = "") -> str:
    return f"  {label:<26}{direct:>14}{gateway:>14}{rel:>12}"


def _measured(label: str, key: str, result: ScenarioResult, rel: float | None, digits: int) -> str:
    direct, gateway = getattr(result.direct, key), getattr(result.gateway, key)
    return _row(label, _fmt(direct, digits), _fmt(gateway, digits), _fmt(rel, 3))


def scenario_table(index: int, result: ScenarioResult, found: Figures) -> list[str]:
    s, direct, gateway = result.scenario, result.direct, result.gateway
    unit = "streams/s" if s.stream else "requests/s"
    lines = [
        f"[{index}] {s.key}: {s.title}",
        f"    concurrency {s.concurrency}, {gateway.elapsed_s:.1f} s measured, "
        f"driver {gateway.driver}",
        _row("", "direct", "gateway", "gw/direct"),
        _measured(unit, "rate", result, found["rate_ratio"], 1),
        _measured("latency p50 ms", "p50_ms", result, found["p50_ratio"], 2),
        _measured("latency p99 ms", "p99_ms", result, found["p99_ratio"], 2),
    ]
    if s.stream:
        lines += [
            _measured("TTFT p50 ms", "ttft_p50_ms", result, found["ttft_p50_ratio"], 2),
            _measured("TTFT p99 ms", "ttft_p99_ms", result, found["ttft_p99_ratio"], 2),
        ]
    lines += [
        _row("completed", f"{direct.ok:,}", f"{gateway.ok:,}"),
        _row(
            "failed (incomplete)",
            f"{direct.failed} ({direct.incomplete})",
            f"{gateway.failed} ({gateway.incomplete})",
        ),
        _row(
            "mock CPU ms/request",
            _fmt(found["direct_mock_cpu_ms_per_request"], 3),
            _fmt(found["gateway_mock_cpu_ms_per_request"], 3),
        ),
        _row("gateway CPU ms/request", "-", _fmt(found["gateway_cpu_ms_per_request"], 3)),
        _row("  of which system %", "-", _fmt(_percent(found["gateway_system_cpu_share"]), 0)),
    ]
    if s.stream:
        lines.append(_row("gateway CPU us/chunk", "-", _fmt(found["gateway_cpu_us_per_chunk"], 1)))
    if "ttft_p50_added_ms" in found:
        lines.append(_row("TTFT p50 added ms", "", _fmt(found["ttft_p50_added_ms"], 3)))
    if "relay_ttft_p50_added_ms" in found:
        added = found["relay_ttft_p50_added_ms"]
        lines.append(_row("  by a bare TCP relay", "", _fmt(added, 3)))
    lines.append(_row("gateway peak RSS MB", "-", _fmt(found["gateway_peak_rss_mb"], 1)))
    for window, health in (("idle", gateway.health_idle), ("loaded", gateway.health_loaded)):
        if health is not None:
            shown = f"{_fmt(health.p50_ms)}/{_fmt(health.p99_ms)}"
            lines.append(_row(f"/health p50/p99 ms, {window}", "-", shown, _fmt(health.max_ms)))
    if gateway.health_loaded is not None:
        lines.append("    (/health: one probe every 20 ms; last column: the slowest, ms)")
    lines.append(
        _row(
            "other CPU load, cores",
            _fmt(found["direct_other_cores"]),
            _fmt(found["gateway_other_cores"]),
        )
    )
    if max(found["direct_other_cores"] or 0, found["gateway_other_cores"] or 0) > NOISY_CORES:
        lines.append(
            "    note: other processes used the CPU during this scenario; rerun on a "
            "quiet machine for trustworthy figures"
        )
    for measurement in (direct, gateway):
        lines += [
            f"    {measurement.target} error: {reason} x{count}"
            for reason, count in measurement.errors.items()
        ]
    return lines


def _profile_lines(result: ScenarioResult) -> list[str]:
    if not result.profile:
        return []
    lines = [f"  gateway profile, {result.scenario.key} (py-spy; self %, total %, function):"]
    lines += [f"    {own:5.1f} {total:5.1f}  {name}" for own, total, name in result.profile]
    return lines


def block(index: int, result: Result) -> list[str]:
    """One scenario's lines in the report."""
    if isinstance(result, ScenarioResult):
        return [*scenario_table(index, result, figures(result)), *_profile_lines(result)]
    lines = [f"[{index}] {result.scenario.key}: {result.scenario.title}"]
    for part in result.parts:
        table = scenario_table(index, part, figures(part))
        lines += ["  " + line for line in [f"{part.scenario.title}", *table[1:]]]
        lines += ["  " + line for line in _profile_lines(part)]
    return lines + result.lines


def render(results: list[Result], targets: list[dict[str, object]]) -> str:
    """The whole report as text: one block per scenario, then the targets."""
    lines: list[str] = []
    for index, result in enumerate(results, 1):
        lines += [*block(index, result), ""]
    if targets:
        lines.append("targets (one gateway worker)")
        for t in targets:
            value = t["value"]
            shown = _fmt(value, 2) if isinstance(value, float | int) else "-"
            verdict = "PASS" if t["passed"] else "FAIL"
            lines.append(
                f"  {t['scenario']:<22}{t['target']:<30}{shown:>10}  {t['limit']:<9}{verdict}"
            )
    return "\n".join(lines)


def _measurement_json(measurement: Measurement) -> dict[str, object]:
    return dataclasses.asdict(measurement)


def _result_json(result: Result) -> dict[str, object]:
    if isinstance(result, SpecialResult):
        return {
            **dataclasses.asdict(result.scenario),
            "figures": result.figures,
            "parts": [_result_json(part) for part in result.parts],
        }
    return {
        **dataclasses.asdict(result.scenario),
        "direct": _measurement_json(result.direct),
        "gateway": _measurement_json(result.gateway),
        "relay": _measurement_json(result.relay) if result.relay else None,
        "figures": figures(result),
        "profile": [
            {"self_percent": own, "total_percent": total, "function": name}
            for own, total, name in result.profile or []
        ],
    }


def write_json(
    path: Path,
    meta: dict[str, object],
    results: list[Result],
    targets: list[dict[str, object]],
) -> None:
    """Everything measured, with the run's settings, as one JSON document."""
    document = {
        "meta": meta,
        "scenarios": [_result_json(result) for result in results],
        "targets": targets,
    }
    dump_json(path, document)


def dump_json(path: Path, document: Mapping[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
