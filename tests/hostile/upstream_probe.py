"""Watches a gateway from outside: its RSS and how fast `/health` answers, until stdin closes.

Run as its own process (`python upstream_probe.py PID URL`), so that neither the test's
threads nor its fake upstreams slow the probes down: a slow probe is the gateway's doing.
Prints one JSON object when stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx

EVERY_S = 0.02


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def main(pid: int, url: str) -> None:
    stop = threading.Event()

    def wait_for_stdin_to_close() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_stdin_to_close, daemon=True).start()
    baseline = peak = rss_kb(pid)
    slowest, probes, failures = 0.0, 0, 0
    with httpx.Client(base_url=url, timeout=2) as http:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while not stop.is_set():
            peak = max(peak, rss_kb(pid))
            began = time.perf_counter()
            try:
                ok = http.get("/health").status_code == 200
            except httpx.HTTPError:
                ok = False
            slowest = max(slowest, time.perf_counter() - began)
            probes, failures = probes + 1, failures + (not ok)
            stop.wait(EVERY_S)
    peak = max(peak, rss_kb(pid))
    report = {
        "baseline_kb": baseline,
        "peak_kb": peak,
        "slowest_health_ms": slowest * 1000,
        "probes": probes,
        "failures": failures,
    }
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
