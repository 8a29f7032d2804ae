"""The comparison's report: one table per scenario, the ratios and the goals, as text for the
terminal, as Markdown for notes, and as JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from bench.compare import (
    COLUMNS,
    DIRECT,
    TITLES,
    Comparison,
    cpu_ms_per_request,
    least_busy_share,
    other_cores,
    peak_rss_mb,
    ratios,
)
from bench.outcome import fmt
from bench.report import NOISY_CORES, dump_json
from bench.runner import Measurement

Cell = Callable[[Measurement], str]


def _workers_cpu(m: Measurement) -> str:
    return " + ".join(f"{w.cpu_s:.1f}" for w in m.workers) or "-"


def _server(cell: Cell) -> Cell:
    """A figure of the server under test, which the direct column has not."""
    return lambda m: "-" if m.target == DIRECT else cell(m)


def rows(stream: bool) -> list[tuple[str, Cell]]:
    """The table's rows: a label and how each column's cell is written."""
    found: list[tuple[str, Cell]] = [
        ("streams/s" if stream else "requests/s", lambda m: fmt(m.rate, 1)),
        ("latency p50 ms", lambda m: fmt(m.p50_ms, 1)),
        ("latency p99 ms", lambda m: fmt(m.p99_ms, 1)),
    ]
    if stream:
        found.append(("TTFT p50 ms", lambda m: fmt(m.ttft_p50_ms, 1)))
    found += [
        ("CPU ms/request", _server(lambda m: fmt(cpu_ms_per_request(m), 3))),
        ("peak RSS per worker MB", _server(lambda m: fmt(peak_rss_mb(m), 1))),
        ("CPU s per worker", _server(_workers_cpu)),
        ("completed", lambda m: f"{m.ok:,}"),
        ("failed (incomplete)", lambda m: f"{m.failed:,} ({m.incomplete:,})"),
        ("other CPU load, cores", lambda m: fmt(other_cores(m), 2)),
    ]
    return found


def _cells(c: Comparison) -> list[tuple[str, list[str]]]:
    table = []
    for label, cell in rows(c.scenario.stream):
        measured = (c.columns.get(column) for column in COLUMNS)
        table.append((label, [cell(m) if m is not None else "not run" for m in measured]))
    return table


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}x"


def ratio_lines(c: Comparison) -> list[tuple[str, str]]:
    found = ratios(c)
    unit = "streams/s" if c.scenario.stream else "requests/s"
    share = least_busy_share(c.columns.get("gateway-2w"))
    return [
        (f"gateway 1w / LiteLLM, {unit}", _times(found["gateway_1w_over_litellm_rate"])),
        (f"gateway 2w / LiteLLM, {unit}", _times(found["gateway_2w_over_litellm_rate"])),
        (
            "LiteLLM / gateway 1w, CPU per request",
            _times(found["litellm_over_gateway_1w_cpu_per_request"]),
        ),
        (f"gateway 2w / 1w, {unit}", _times(found["gateway_2w_over_1w_rate"])),
        ("gateway 2w least busy worker's CPU share", fmt(share, 2)),
    ]


def _noisy(c: Comparison) -> bool:
    return any((other_cores(m) or 0) > NOISY_CORES for m in c.columns.values() if m is not None)


def _notes(c: Comparison) -> list[str]:
    notes = list(c.notes)
    for column in COLUMNS:
        m = c.columns.get(column)
        if m is not None:
            notes += [f"{TITLES[column]} error: {why} x{n}" for why, n in m.errors.items()]
    if _noisy(c):
        notes.append("other processes used the CPU meanwhile: these figures are noisy")
    return notes


def _heading(c: Comparison) -> str:
    s = c.scenario
    return f"{s.key}: {s.title} (concurrency {s.concurrency})"


def render_text(comparisons: list[Comparison], goals: list[dict[str, object]]) -> str:
    lines: list[str] = []
    for c in comparisons:
        lines += [_heading(c), f"  {'':<24}" + "".join(f"{TITLES[k]:>15}" for k in COLUMNS)]
        lines += [
            f"  {label:<24}" + "".join(f"{v:>15}" for v in cells) for label, cells in _cells(c)
        ]
        lines += [f"  {label:<44}{value:>10}" for label, value in ratio_lines(c)]
        lines += [f"  note: {note[:300]}" for note in _notes(c)]
        lines.append("")
    if goals:
        lines.append("goals (gateway against LiteLLM, on this machine)")
    for g in goals:
        value = g["value"]
        shown = fmt(value, 2) if isinstance(value, float | int) else "-"
        lines.append(
            f"  {g['scenario']:<12}{g['goal']:<44}{shown:>9}  {g['limit']:<8}{g['verdict']}"
        )
    return "\n".join(lines)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render_markdown(
    comparisons: list[Comparison], goals: list[dict[str, object]], meta: dict[str, object]
) -> str:
    lines = [
        "# Gateway and LiteLLM, side by side",
        "",
        f"{meta.get('started')}, commit {meta.get('commit')}, {meta.get('cpus')} CPUs, "
        f"{meta.get('duration_s')} s per measurement; LiteLLM {meta.get('litellm_version')}.",
        "",
    ]
    for c in comparisons:
        lines += [f"## {_heading(c)}", ""]
        lines += [_md_row(["", *(TITLES[k] for k in COLUMNS)]), _md_row(["---"] * 5)]
        lines += [_md_row([label, *cells]) for label, cells in _cells(c)]
        lines.append("")
        lines += [f"- {label}: {value}" for label, value in ratio_lines(c)]
        lines += [f"- note: {note[:300]}" for note in _notes(c)]
        lines.append("")
    lines += ["## Goals", "", _md_row(["scenario", "goal", "value", "limit", "verdict"])]
    lines.append(_md_row(["---"] * 5))
    for g in goals:
        value = g["value"]
        shown = fmt(value, 2) if isinstance(value, float | int) else "-"
        lines.append(
            _md_row([str(g["scenario"]), str(g["goal"]), shown, str(g["limit"]), str(g["verdict"])])
        )
    return "\n".join(lines) + "\n"


def comparison_json(c: Comparison) -> dict[str, object]:
    return {
        **dataclasses.asdict(c.scenario),
        "columns": {
            column: None if m is None else dataclasses.asdict(m) for column, m in c.columns.items()
        },
        "figures": {
            column: {
                "cpu_ms_per_request": cpu_ms_per_request(m),
                "peak_rss_per_worker_mb": peak_rss_mb(m),
                "least_busy_worker_cpu_share": least_busy_share(m),
                "other_cores": other_cores(m),
            }
            for column, m in c.columns.items()
            if m is not None
        },
        "ratios": ratios(c),
        "notes": c.notes,
    }


def write_json(
    path: Path,
    meta: dict[str, object],
    comparisons: list[Comparison],
    goals: list[dict[str, object]],
) -> None:
    document = {
        "meta": meta,
        "comparison": [comparison_json(c) for c in comparisons],
        "goals": goals,
    }
    dump_json(path, document)
