"""What every hostile case asserts besides its status: the gateway's memory stayed bounded,
the CPU time it spent on the attack too, and `/health` kept answering quickly, probed from a
process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from tests.hostile.probe import STARTED, ProbeReport
from tests.processes import REPO_ROOT, GatewayProcess

HEALTH_WITHIN_S = 0.1
# What an attack may cost the gateway at most, over its resident size before it.
RSS_GROWTH_MB = 100


def memory_kb(pid: int, field: str) -> int:
    """`VmRSS` or `VmHWM` (the peak) of a process, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")


def descendants(pid: int) -> list[int]:
    """Every process under `pid` (its render processes, and the server that forks them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_s(pids: list[int]) -> float:
    """User and system time the processes have used."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def gateway_cpu_s(pid: int) -> float:
    """CPU time of a gateway process and everything under it."""
    return cpu_s([pid, *descendants(pid)])


def reset_peak(pid: int) -> None:
    """Start the process's `VmHWM` afresh from its current RSS."""
    with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


class Watch:
    """While a case runs, a prober process (`tests.hostile.probe`) asks `/health` every 20 ms
    and this one keeps the gateway's peak RSS and the CPU time it spends; on a clean exit,
    asserts that every probe answered 200 within `health_within_s` (`HEALTH_WITHIN_S`
    unless a case moves more data than the event loop can hand off), that the peak stayed
    within `rss_growth_mb` of the RSS at the start, and (when given) that the CPU time stayed
    within `max_cpu_s`."""

    def __init__(
        self,
        gateway: GatewayProcess,
        *,
        rss_growth_mb: int = RSS_GROWTH_MB,
        max_cpu_s: float | None = None,
        health_within_s: float = HEALTH_WITHIN_S,
    ) -> None:
        self._url = gateway.url
        self._pid = gateway.process.pid
        self.rss_growth_mb = rss_growth_mb
        self.max_cpu_s = max_cpu_s
        self.health_within_s = health_within_s
        self.report = ProbeReport()
        self.peak_growth_mb = 0.0
        self.cpu_s = 0.0

    def __enter__(self) -> Watch:
        self._baseline_kb = memory_kb(self._pid, "VmRSS")
        reset_peak(self._pid)
        self._cpu_before = gateway_cpu_s(self._pid)
        self._prober = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile.probe", self._url],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._prober.stdout is not None
        assert self._prober.stdout.readline().strip() == STARTED
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cpu_s = gateway_cpu_s(self._pid) - self._cpu_before
        out, _ = self._prober.communicate("stop\n", timeout=30)
        self.report = ProbeReport(**json.loads(out))
        self.peak_growth_mb = (memory_kb(self._pid, "VmHWM") - self._baseline_kb) / 1024
        print(f"\n{self}")  # noqa: T201 - shown with -rP: what each attack cost
        if exc_type is None:
            self.assert_bounded()

    def __str__(self) -> str:
        report = self.report
        return (
            f"peak RSS +{self.peak_growth_mb:.1f} MB, CPU {self.cpu_s:.2f} s, "
            f"/health median {report.median_s * 1000:.1f} ms, "
            f"slowest {report.slowest_s * 1000:.1f} ms "
            f"of {report.probes} probes, {len(report.failures)} failed"
        )

    def assert_bounded(self) -> None:
        report = self.report
        assert report.probes > 1, "the prober never ran"
        assert not report.failures, f"/health failed while under attack: {report.failures[:5]}"
        assert report.slowest_s <= self.health_within_s, (
            f"/health took {report.slowest_s * 1000:.0f} ms while under attack"
        )
        assert self.peak_growth_mb <= self.rss_growth_mb, (
            f"the gateway grew by {self.peak_growth_mb:.0f} MB (bound {self.rss_growth_mb} MB)"
        )
        if self.max_cpu_s is not None:
            assert self.cpu_s <= self.max_cpu_s, (
                f"the gateway spent {self.cpu_s:.1f} s of CPU (bound {self.max_cpu_s:g} s)"
            )
