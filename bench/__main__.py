"""`python -m bench`: each scenario straight at a mock upstream and through a fresh gateway."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import uvloop

from bench import compare, litellm_proxy
from bench.compare_report import render_markdown, render_text
from bench.compare_report import write_json as write_compare_json
from bench.payloads import write_gateway_config
from bench.procs import Service, raise_open_file_limit, start_mock
from bench.report import Result, block, check_targets, render, write_json
from bench.runner import Settings, default_driver, run_scenario
from bench.scenarios import SCENARIOS, Scenario, select
from bench.special import run_special

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# The soak holds 1,000 client connections here, 2,000 sockets in the gateway and 1,000 in the
# mock; the mock, the gateway and the probes inherit this process's limit.
OPEN_FILES_WANTED = 16_384


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="KEY",
        help="run only this scenario (repeat, or separate with commas); "
        f"one of: {', '.join(s.key for s in SCENARIOS)}; without it, all but "
        f"{', '.join(s.key for s in SCENARIOS if not s.in_default_run)}",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds measured per scenario and target (default 10)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds of unmeasured load before each measurement (default 1)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run: 3 s per measurement, 0.5 s warm-up"
    )
    parser.add_argument(
        "--driver",
        choices=("auto", "wrk", "asyncio"),
        default="auto",
        help="load generator for non-streamed scenarios (default: wrk if found)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample the gateway with py-spy while it is measured"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="folder for the JSON results and logs (default bench/results)",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="direct, the gateway with 1 and 2 workers, and the LiteLLM proxy side by side, "
        f"on {', '.join(compare.SCENARIOS)} (or --scenario); installs LiteLLM "
        f"{litellm_proxy.VERSION} into its own venv the first time",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 0.5
    if args.scenario:
        args.scenario = [key.strip() for item in args.scenario for key in item.split(",")]
    return args


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _settings(args: argparse.Namespace, run_dir: Path, mock: Service) -> Settings:
    return Settings(
        root=ROOT,
        work=run_dir,
        gateway_config=write_gateway_config(run_dir, mock.port),
        duration_s=args.duration,
        warmup_s=args.warmup,
        driver=default_driver(args.driver),
        profile=args.profile,
    )


async def run(args: argparse.Namespace, run_dir: Path) -> list[Result]:
    scenarios = select(args.scenario)
    mock = await start_mock(ROOT, run_dir / "mock.log")
    try:
        settings = _settings(args, run_dir, mock)
        results: list[Result] = []
        for index, scenario in enumerate(scenarios, 1):
            print(f"running {scenario.key} ({index}/{len(scenarios)}) ...", flush=True)
            result: Result
            if isinstance(scenario, Scenario):
                result = await run_scenario(scenario, settings, mock)
            else:
                result = await run_special(scenario, settings, mock)
            print("\n".join(block(index, result)) + "\n", flush=True)
            results.append(result)
        return results
    finally:
        mock.stop()


async def run_compare(args: argparse.Namespace, run_dir: Path) -> list[compare.Comparison]:
    scenarios = compare.scenarios(args.scenario)
    mock = await start_mock(ROOT, run_dir / "mock.log")
    try:
        settings = _settings(args, run_dir, mock)
        models = compare.upstream_models(scenarios)
        litellm_config = litellm_proxy.write_config(run_dir, mock.port, models)
        comparisons: list[compare.Comparison] = []
        for index, scenario in enumerate(scenarios, 1):
            print(f"running {scenario.key} ({index}/{len(scenarios)}) ...", flush=True)
            comparison = await compare.run_comparison(scenario, settings, mock, litellm_config)
            print(render_text([comparison], []) + "\n", flush=True)
            comparisons.append(comparison)
        return comparisons
    finally:
        mock.stop()


def main_compare(args: argparse.Namespace, run_dir: Path, meta: dict[str, object]) -> int:
    """The side-by-side run: LiteLLM installed if need be, then every column of every scenario."""
    try:
        compare.scenarios(args.scenario)
        install_s = litellm_proxy.ensure_installed()
        comparisons = uvloop.run(run_compare(args, run_dir))
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("python -m bench: interrupted", file=sys.stderr)
        return 130
    meta.update(
        gateway_workers=[1, 2],
        litellm_version=litellm_proxy.VERSION,
        litellm_venv=str(litellm_proxy.VENV),
        litellm_install_s=install_s,
    )
    goals = compare.check_goals(comparisons)
    print("=" * 78)
    print(render_text(comparisons, goals))
    for folder in (run_dir, args.results):
        name = "results.json" if folder == run_dir else "latest-compare.json"
        write_compare_json(folder / name, meta, comparisons, goals)
    (run_dir / "compare.md").write_text(render_markdown(comparisons, goals, meta))
    print(
        f"\nresults: {run_dir / 'results.json'} (also {args.results / 'latest-compare.json'}); "
        f"Markdown: {run_dir / 'compare.md'}"
    )
    missed = [g for g in goals if g["verdict"] != "PASS"]
    return 1 if args.check and missed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for scenario in SCENARIOS:
            only = "" if scenario.in_default_run else "; only when named"
            print(f"{scenario.key:<16}{scenario.title} (concurrency {scenario.concurrency}{only})")
        return 0
    try:
        select(args.scenario)
    except ValueError as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    soft, hard = raise_open_file_limit(OPEN_FILES_WANTED)
    if soft < OPEN_FILES_WANTED:
        print(f"note: open-file limit {soft} (hard {hard}); the soak needs about 5,000")
    run_dir = args.results / time.strftime("%Y%m%d-%H%M%S")
    while run_dir.exists():
        run_dir = run_dir.with_name(run_dir.name + "-1")
    meta: dict[str, object] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": _git_commit(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "gateway_workers": 1,
        "open_file_limit": soft,
    }
    if args.compare:
        return main_compare(args, run_dir, meta)
    try:
        results = uvloop.run(run(args, run_dir))
    except (RuntimeError, OSError) as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("python -m bench: interrupted", file=sys.stderr)
        return 130
    targets = check_targets(results)
    print("=" * 78)
    print(render(results, targets))
    write_json(run_dir / "results.json", meta, results, targets)
    write_json(args.results / "latest.json", meta, results, targets)
    print(f"\nresults: {run_dir / 'results.json'} (also {args.results / 'latest.json'})")
    missed = [t for t in targets if not t["passed"]]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
