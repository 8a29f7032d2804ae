"""What every hostile case asserts besides its status: the gateway's memory stayed bounded and
`/health` kept answering quickly, on a new connection each time, as a liveness probe asks."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

from tests.ops.processes import REPO_ROOT, GatewayProcess

logger = logging.getLogger(__name__)

HEALTH_WITHIN_S = 0.1
RSS_GROWTH_MB = 100
PROBE_EVERY_S = 0.02
_HEALTH_REQUEST = b"GET /health HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n"


def memory_kb(pid: int, field: str) -> int:
    """`VmRSS` or `VmHWM` (the peak) of a process, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    """Start the process's `VmHWM` afresh from its current RSS."""
    with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def ask_health(url: str, timeout_s: float = 2.0) -> tuple[float, bytes]:
    """One `GET /health` on its own connection: how long it took and the status line."""
    parts = urlsplit(url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s) as sock:
        sock.sendall(_HEALTH_REQUEST)
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return time.monotonic() - started, reply.split(b"\r\n", 1)[0]


class Watch:
    """While a case runs, probes `/health` every `PROBE_EVERY_S` from a process of its own (so
    that the attack's threads in this one do not slow the probes) and keeps the gateway's
    peak RSS; on a clean exit, asserts that every probe answered 200 within
    `HEALTH_WITHIN_S` and that the peak stayed within `rss_growth_mb` of the RSS at the start."""

    def __init__(self, gateway: GatewayProcess, *, rss_growth_mb: int = RSS_GROWTH_MB) -> None:
        self._gateway = gateway
        self._pid = gateway.process.pid
        self.rss_growth_mb = rss_growth_mb
        self.report = ProbeReport()
        self.peak_growth_mb = 0.0

    def __enter__(self) -> Watch:
        self._baseline_kb = memory_kb(self._pid, "VmRSS")
        reset_peak(self._pid)
        self._prober = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile.watch", self._gateway.url],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._prober.stdout is not None
        self._prober.stdout.readline()  # it has probed once
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        out, _ = self._prober.communicate(b"stop\n", timeout=30)
        self.report = ProbeReport(**json.loads(out))
        self.peak_growth_mb = (memory_kb(self._pid, "VmHWM") - self._baseline_kb) / 1024
        logger.info(
            "peak RSS +%.1f MB over %.1f MB, slowest /health %.1f ms of %d",
            self.peak_growth_mb,
            self._baseline_kb / 1024,
            self.report.slowest_s * 1000,
            self.report.probes,
        )
        if exc_type is None:
            self.assert_bounded()

    def assert_bounded(self) -> None:
        report = self.report
        assert report.probes > 1, "the prober never ran"
        assert not report.failures, f"/health failed while under attack: {report.failures[:5]}"
        assert report.slowest_s <= HEALTH_WITHIN_S, (
            f"/health took {report.slowest_s * 1000:.0f} ms while under attack"
        )
        assert self.peak_growth_mb <= self.rss_growth_mb, (
            f"the gateway grew by {self.peak_growth_mb:.0f} MB (bound {self.rss_growth_mb} MB)"
        )


@dataclass
class ProbeReport:
    probes: int = 0
    slowest_s: float = 0.0
    failures: list[str] = field(default_factory=list)

    def probe(self, url: str) -> None:
        try:
            took, status = ask_health(url)
        except OSError as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")
            return
        self.probes += 1
        self.slowest_s = max(self.slowest_s, took)
        if not status.startswith(b"HTTP/1.1 200"):
            self.failures.append(status.decode("latin-1"))


def probe_until_told(url: str) -> None:
    """The prober's process: probes once, says so, probes until a line arrives on stdin,
    probes once more, and prints its report as JSON."""
    stop = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    report = ProbeReport()
    report.probe(url)
    print("started", flush=True)  # noqa: T201
    while not stop.wait(PROBE_EVERY_S):
        report.probe(url)
    report.probe(url)
    print(json.dumps(asdict(report)), flush=True)  # noqa: T201


if __name__ == "__main__":
    probe_until_told(sys.argv[1])
