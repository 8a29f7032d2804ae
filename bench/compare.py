"""`python -m bench --compare`: the same scenarios straight at the mock, through the gateway with
one and with two workers, and through the LiteLLM proxy, side by side, against the goals."""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import litellm_proxy
from bench.procs import Service, start_gateway
from bench.runner import Measurement, Settings, measure
from bench.scenarios import Scenario, select
from bench.stats import ratio

SCENARIOS = ("small", "streams500", "image")
DIRECT, ONE, TWO, LITELLM = "direct", "gateway-1w", "gateway-2w", "litellm"
COLUMNS = (DIRECT, ONE, TWO, LITELLM)
TITLES = {DIRECT: "direct (mock)", ONE: "gateway 1w", TWO: "gateway 2w", LITELLM: "LiteLLM"}
MB = 1024 * 1024
BUSY_SHARE = 1 / 3  # with two workers, each does at least a third of the workers' CPU work
Starter = Callable[[], Awaitable[Service]]


@dataclass
class Comparison:
    """One scenario measured against every column; None where a column could not run."""

    scenario: Scenario
    columns: dict[str, Measurement | None]
    notes: list[str] = field(default_factory=list)


def scenarios(keys: list[str] | None) -> list[Scenario]:
    """The compared scenarios: `keys`, or the three of the comparison; regular ones only."""
    chosen = select(keys or list(SCENARIOS))
    regular = [s for s in chosen if isinstance(s, Scenario)]
    if len(regular) != len(chosen):
        raise ValueError("--compare takes only scenarios measured direct and through a server")
    return regular


def upstream_models(chosen: list[Scenario]) -> dict[str, str]:
    """Each model name the gateway is asked for, and the mock's name for it."""
    return {s.gateway_model: s.upstream_model for s in chosen}


async def _column(
    scenario: Scenario, settings: Settings, mock: Service, name: str, start: Starter
) -> tuple[Measurement | None, str | None]:
    """Start a server, measure `scenario` through it, stop it. A server that does not start is
    reported, not fatal: the other columns still tell something."""
    try:
        server = await start()
    except RuntimeError as exc:
        return None, f"{TITLES[name]} did not start: {exc}"
    try:
        measurement = await measure(scenario, settings, mock, server, name=name, strict=False)
    finally:
        server.stop()
    return measurement, measurement.check_error


async def run_comparison(
    scenario: Scenario, settings: Settings, mock: Service, litellm_config: Path
) -> Comparison:
    """`scenario` straight at the mock, then through a fresh server for each other column."""
    result = Comparison(scenario, {})
    direct = await measure(scenario, settings, mock, None, strict=False)
    result.columns[DIRECT] = direct
    if direct.check_error:
        result.notes.append(direct.check_error)
    key, work, root, config = scenario.key, settings.work, settings.root, settings.gateway_config
    starters: dict[str, Starter] = {
        ONE: lambda: start_gateway(root, config, work / f"gateway-{key}.log", 1),
        TWO: lambda: start_gateway(root, config, work / f"gateway-2w-{key}.log", 2),
        LITELLM: lambda: litellm_proxy.start_litellm(
            root, litellm_config, work / f"litellm-{key}.log"
        ),
    }
    for name, start in starters.items():
        print(f"  {TITLES[name]} ...", flush=True)
        measurement, note = await _column(scenario, settings, mock, name, start)
        result.columns[name] = measurement
        if note:
            result.notes.append(note)
    return result


# The figures of one column.


def cpu_ms_per_request(m: Measurement | None) -> float | None:
    if m is None or m.gateway_cpu_s is None:
        return None
    return ratio(m.gateway_cpu_s * 1000, m.ok + m.failed)


def peak_rss_mb(m: Measurement | None) -> float | None:
    if m is None or m.gateway_peak_rss_bytes is None:
        return None
    return m.gateway_peak_rss_bytes / MB


def other_cores(m: Measurement | None) -> float | None:
    return None if m is None else ratio(m.other_cpu_s, m.elapsed_s)


def least_busy_share(m: Measurement | None) -> float | None:
    """The share of the workers' CPU time done by the least busy worker (0.5: even)."""
    if m is None or len(m.workers) < 2:
        return None
    cpu = [max(0.0, w.cpu_s) for w in m.workers]
    return ratio(min(cpu), sum(cpu))


def rate(m: Measurement | None) -> float | None:
    return None if m is None else m.rate


def ratios(c: Comparison) -> dict[str, float | None]:
    """The comparison's ratios: how far ahead of LiteLLM, and what a second worker adds."""
    one, two, lite = c.columns.get(ONE), c.columns.get(TWO), c.columns.get(LITELLM)
    direct = c.columns.get(DIRECT)
    return {
        "gateway_1w_over_litellm_rate": ratio(rate(one), rate(lite)),
        "gateway_2w_over_litellm_rate": ratio(rate(two), rate(lite)),
        "litellm_over_gateway_1w_cpu_per_request": ratio(
            cpu_ms_per_request(lite), cpu_ms_per_request(one)
        ),
        "gateway_2w_over_1w_rate": ratio(rate(two), rate(one)),
        "gateway_1w_over_direct_rate": ratio(rate(one), rate(direct)),
        "litellm_over_direct_rate": ratio(rate(lite), rate(direct)),
    }


# The goals.


@dataclass(frozen=True)
class Goal:
    """A goal checked against one scenario's comparison: `value(c) <op> bound`."""

    scenarios: tuple[str, ...]  # the scenarios it applies to
    label: str
    op: str  # one of COMPARE's keys
    bound: float
    value: Callable[[Comparison], float | None]

    @property
    def limit(self) -> str:
        bound = f"{self.bound:,.0f}" if self.bound >= 1000 else f"{self.bound:.3g}"
        return f"{self.op} {bound}"

    def passes(self, value: float) -> bool:
        return COMPARE[self.op](value, self.bound)


COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
    "<": operator.lt,
}


def _worst_rss(c: Comparison) -> float | None:
    found = [v for v in (peak_rss_mb(c.columns.get(ONE)), peak_rss_mb(c.columns.get(TWO))) if v]
    return max(found, default=None)


def _ttft_p99_ms(m: Measurement | None) -> float | None:
    return None if m is None else m.ttft_p99_ms


def _unfinished(c: Comparison) -> float | None:
    one = c.columns.get(ONE)
    return None if one is None else one.failed + one.incomplete


GOALS = (
    Goal(
        ("small",),
        "gateway 1w / LiteLLM, requests/s",
        ">=",
        15,
        lambda c: ratios(c)["gateway_1w_over_litellm_rate"],
    ),
    Goal(
        ("small",),
        "LiteLLM / gateway 1w, CPU per request",
        ">",
        9,
        lambda c: ratios(c)["litellm_over_gateway_1w_cpu_per_request"],
    ),
    Goal(
        ("streams500",),
        "gateway 1w / LiteLLM, streams/s",
        ">=",
        10,
        lambda c: ratios(c)["gateway_1w_over_litellm_rate"],
    ),
    Goal(
        ("streams500",),
        "gateway 1w failed or incomplete",
        "==",
        0,
        _unfinished,
    ),
    Goal(
        ("streams500",),
        "gateway 1w TTFT p99 ms",
        "<",
        2000,
        lambda c: _ttft_p99_ms(c.columns.get(ONE)),
    ),
    Goal(
        ("image",),
        "gateway 1w / LiteLLM, requests/s",
        ">=",
        4,
        lambda c: ratios(c)["gateway_1w_over_litellm_rate"],
    ),
    Goal(
        ("small",),
        "gateway 2w / 1w, requests/s",
        ">=",
        1.8,
        lambda c: ratios(c)["gateway_2w_over_1w_rate"],
    ),
    Goal(
        SCENARIOS,
        "gateway 2w least busy worker's CPU share",
        ">=",
        BUSY_SHARE,
        lambda c: least_busy_share(c.columns.get(TWO)),
    ),
    Goal(
        SCENARIOS,
        "gateway peak RSS per worker MB (1w, 2w)",
        "<",
        150,
        _worst_rss,
    ),
)


def check_goals(comparisons: list[Comparison]) -> list[dict[str, object]]:
    """Each goal for each scenario it applies to that ran: its value and PASS, FAIL, or n/a
    when it could not be measured (a column missing, or LiteLLM completing nothing)."""
    checked: list[dict[str, object]] = []
    for goal in GOALS:
        for c in comparisons:
            if c.scenario.key not in goal.scenarios:
                continue
            value = goal.value(c)
            verdict = "n/a" if value is None else "PASS" if goal.passes(value) else "FAIL"
            checked.append(
                {
                    "scenario": c.scenario.key,
                    "goal": goal.label,
                    "limit": goal.limit,
                    "value": value,
                    "verdict": verdict,
                }
            )
    return checked
