"""Instructions per request: the gateway under callgrind, counting only while it serves.

`python -m bench.instructions` starts the mock upstream and one gateway worker under
`valgrind --tool=callgrind`, warms each kind of request up, then counts the instructions the
gateway executes for `--requests` of them over `--connections` connections. Wall-clock figures
on a shared machine swing by a quarter from one second to the next; instruction counts move
by about half a percent from run to run, so a change of a few percent in the work a request
costs shows plainly.

Kinds are the benchmark's scenarios (`small`, `stream`, `image`, ...), sent as the load
generator sends them. Needs valgrind (`apt-get install -y valgrind`); the gateway is about 50
times slower under it, so a few hundred requests take a minute or two.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import uvloop

from bench.load import Load, run_load
from bench.payloads import write_gateway_config
from bench.procs import HOST, free_port, gateway_args, launch, start_mock
from bench.scenarios import (
    RESPONSES_SMALL,
    RESPONSES_SMALL_CHAT,
    RESPONSES_STREAM,
    RESPONSES_STREAM_CHAT,
    SCENARIOS,
    Scenario,
)

ROOT = Path(__file__).resolve().parent.parent
WARMUP_REQUESTS = 100
START_TIMEOUT_S = 300.0  # the gateway starts slowly under valgrind
SETTLE_S = 2.0
_TOTALS = re.compile(rb"^(?:summary|totals):\s*(\d+)", re.MULTILINE)
# The halves of the `responses` comparison, each a kind of request of its own.
_RESPONSES = (RESPONSES_SMALL_CHAT, RESPONSES_SMALL, RESPONSES_STREAM_CHAT, RESPONSES_STREAM)


def _scenario(key: str) -> Scenario:
    for scenario in (*SCENARIOS, *_RESPONSES):
        if isinstance(scenario, Scenario) and scenario.key == key:
            return scenario
    raise SystemExit(f"no scenario {key!r}; try small, stream, image or responses-small")


async def _drive(scenario: Scenario, port: int, count: int, connections: int) -> None:
    requests = scenario.requests(HOST, port, through_gateway=True)
    load = Load(
        HOST,
        port,
        requests.first,
        min(connections, count),
        duration_s=3600.0,
        streaming=scenario.stream,
        max_requests=count,
        framing=requests.framing,
        next_request=requests.next,
        # Every connection accepted before the first request: how a burst of new connections
        # is taken in then can't change how the requests that follow interleave.
        settle_s=SETTLE_S,
    )
    result = await run_load(load)
    if result.failed or result.ok != count:
        raise SystemExit(f"{scenario.key}: {result.failed} of {count} requests failed")


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def _instructions(folder: Path, pid: int, kind: str) -> int:
    """The instruction total of the dump `callgrind_control -d kind` wrote."""
    for path in folder.glob(f"cg.{pid}.out.*"):
        data = path.read_bytes()
        if f"\ndesc: Trigger: dump {kind}\n".encode() in data[:4096]:
            found = _TOTALS.search(data)
            if found:
                return int(found.group(1))
    raise SystemExit(f"no callgrind dump for {kind!r} in {folder}")


async def measure(kinds: list[str], count: int, connections: int, folder: Path) -> dict[str, int]:
    """Instructions per request of each kind, on one gateway worker."""
    scenarios = [_scenario(kind) for kind in kinds]
    mock = await start_mock(ROOT, folder / "mock.log")
    found: dict[str, int] = {}
    try:
        port = free_port()
        callgrind = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={folder}/cg.%p.out",
        ]
        args = callgrind + gateway_args(write_gateway_config(folder, mock.port), port)
        log = folder / "gateway.log"
        gateway = await launch(
            "gateway under callgrind", args, port, ROOT, log, start_timeout_s=START_TIMEOUT_S
        )
        try:
            for scenario in scenarios:
                await _drive(scenario, port, WARMUP_REQUESTS, connections)
            _control("-i", "on", str(gateway.pid))
            for scenario in scenarios:
                _control("-z", str(gateway.pid))
                await _drive(scenario, port, count, connections)
                _control("-d", scenario.key, str(gateway.pid))
                found[scenario.key] = _instructions(folder, gateway.pid, scenario.key) // count
        finally:
            gateway.stop()
    finally:
        mock.stop()
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--kinds", default="small,stream", help="scenarios, comma-separated")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep callgrind's dumps here, for callgrind_annotate (a dump per kind)",
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (apt-get install -y valgrind)")
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        found = uvloop.run(measure(kinds, args.requests, args.connections, args.keep.resolve()))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-instructions-") as folder:
            found = uvloop.run(measure(kinds, args.requests, args.connections, Path(folder)))
    for kind, per_request in found.items():
        print(f"{kind:<16}{per_request:>14,} instructions per request")


if __name__ == "__main__":
    main()
