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
from bench.procs import raise_open_file_limit, start_mock
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


async def run(args: argparse.Namespace, run_dir: Path) -> list[Result]:
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
