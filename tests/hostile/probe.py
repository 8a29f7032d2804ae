"""The prober a `Watch` runs in a process of its own: `GET /health` on a new connection every
20 ms, as a liveness probe asks, until a line arrives on stdin; then a JSON report.

Run apart (`python -m tests.hostile.probe URL`) so that neither the attack's threads nor the
fake upstreams served in the test's process slow the probes down: a slow probe is the
gateway's doing.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

PROBE_EVERY_S = 0.02
STARTED = "started"
_HEALTH_REQUEST = b"GET /health HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n"


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


@dataclass
class ProbeReport:
    """How many probes answered, the slowest of them, and what went wrong with the others."""

    probes: int = 0
    slowest_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    took_s: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        ordered = sorted(self.took_s)
        return ordered[len(ordered) // 2] if ordered else 0.0

    def probe(self, url: str) -> None:
        try:
            took, status = ask_health(url)
        except OSError as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")
            return
        self.probes += 1
        self.slowest_s = max(self.slowest_s, took)
        self.took_s.append(round(took, 4))
        if not status.startswith(b"HTTP/1.1 200"):
            self.failures.append(status.decode("latin-1"))


def probe_until_told(url: str) -> None:
    """Probes once, says so, probes until a line arrives on stdin, probes once more, and
    prints its report as JSON."""
    stop = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    report = ProbeReport()
    report.probe(url)
    print(STARTED, flush=True)  # noqa: T201
    while not stop.wait(PROBE_EVERY_S):
        report.probe(url)
    report.probe(url)
    print(json.dumps(asdict(report)), flush=True)  # noqa: T201


if __name__ == "__main__":
    probe_until_told(sys.argv[1])
