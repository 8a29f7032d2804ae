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

from bench.payloads import write_gateway_config
from bench.procs import start_mock
from bench.report import check_targets, figures, render, scenario_table, write_json
from bench.runner import ScenarioResult, Settings, default_driver, run_scenario
from bench.scenarios import SCENARIOS, select

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="KEY",
        help="run only this scenario (repeat, or separate with commas); "
        f"one of: {', '.join(s.key for s in SCENARIOS)}",
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


async def run(args: argparse.Namespace, run_dir: Path) -> list[ScenarioResult]:
    scenarios = select(args.scenario)
    driver = default_driver(args.driver)
    mock = await start_mock(ROOT, run_dir / "mock.log")
    try:
        settings = Settings(
            root=ROOT,
            work=run_dir,
            gateway_config=write_gateway_config(run_dir, mock.port),
            duration_s=args.duration,
            warmup_s=args.warmup,
            driver=driver,
            profile=args.profile,
        )
        results = []
        for index, scenario in enumerate(scenarios, 1):
            print(f"running {scenario.key} ({index}/{len(scenarios)}) ...", flush=True)
            result = await run_scenario(scenario, settings, mock)
            print("\n".join(scenario_table(index, result, figures(result))) + "\n", flush=True)
            results.append(result)
        return results
    finally:
        mock.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for scenario in SCENARIOS:
            print(f"{scenario.key:<12}{scenario.title} (concurrency {scenario.concurrency})")
        return 0
    try:
        select(args.scenario)
    except ValueError as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
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
    }
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
