"""A light /health probe in its own process: is the gateway's event loop answering meanwhile?

`python -m bench.probe --port P` sends `GET /health` on one keep-alive connection every 20 ms
(the next one at once when an answer took longer), until SIGINT, SIGTERM or `--max-s`. It then
prints one JSON line: each probe's send time (`time.monotonic()`, the same clock as the
benchmark's) and its latency in seconds, or -1 for a failed one. Running apart from the load
generator, its timings are not delayed by the load generator's own event loop. The benchmark
slices the samples into windows: an idle gateway, and the measured run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from dataclasses import dataclass

import orjson
import uvloop

from bench.client import Connection, build_get
from bench.stats import percentile_ms

HOST = "127.0.0.1"
INTERVAL_S = 0.02
READY = b"probe ready\n"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
SLOW_MS = 20.0  # probes slower than this are listed, with their time
SLOW_LISTED = 100


async def _probe(port: int, interval_s: float, max_s: float) -> list[tuple[float, float]]:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    request = build_get(HOST, port, "/health")
    samples: list[tuple[float, float]] = []
    connection = await Connection.open(HOST, port, streaming=False)
    sys.stdout.buffer.write(READY)
    sys.stdout.flush()
    started = time.monotonic()
    limit = int(max_s / interval_s) + 1
    tick = started
    try:
        while not stop.is_set() and len(samples) < limit:
            now = time.monotonic()
            if now - started >= max_s:
                break
            if tick > now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), tick - now)
                continue
            tick = max(tick + interval_s, now)
            sent, clock = time.monotonic(), time.perf_counter()
            try:
                if connection.closed:
                    connection = await Connection.open(HOST, port, streaming=False)
                async with asyncio.timeout(10):
                    exchange = await connection.send(request)
                ok = exchange.status == 200 and exchange.error is None
            except (OSError, TimeoutError):
                connection.close()
                ok = False
            samples.append((sent, time.perf_counter() - clock if ok else -1.0))
    finally:
        connection.close()
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.probe", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval-ms", type=float, default=INTERVAL_S * 1000)
    parser.add_argument("--max-s", type=float, default=600.0)
    args = parser.parse_args(argv)
    samples = uvloop.run(_probe(args.port, args.interval_ms / 1000, args.max_s))
    sys.stdout.buffer.write(orjson.dumps({"samples": samples}) + b"\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class HealthFigures:
    """The probe's answers within one window."""

    samples: int
    failed: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    max_at_s: float | None  # when the slowest probe was sent, from the window's start
    slow: list[tuple[float, float]]  # (s from the window's start, ms) of probes over SLOW_MS


def health_figures(samples: list[tuple[float, float]], start: float, end: float) -> HealthFigures:
    """Figures for the probes sent between `start` and `end` (`time.monotonic()` values)."""
    window = [(sent, latency) for sent, latency in samples if start <= sent <= end]
    answered = [latency for _, latency in window if latency >= 0]
    slowest = max(window, key=lambda sample: sample[1], default=None)
    return HealthFigures(
        samples=len(window),
        failed=len(window) - len(answered),
        p50_ms=percentile_ms(answered, 50),
        p99_ms=percentile_ms(answered, 99),
        max_ms=max(answered) * 1000 if answered else None,
        max_at_s=slowest[0] - start if slowest is not None and answered else None,
        slow=[
            (round(sent - start, 3), round(latency * 1000, 1))
            for sent, latency in window
            if latency * 1000 > SLOW_MS
        ][:SLOW_LISTED],
    )


class HealthProbe:
    """The probe process, seen from the benchmark."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(cls, port: int, *, max_s: float = 600.0) -> HealthProbe:
        """Start probing `port`; returns once the probe's connection is open."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.probe",
            "--port",
            str(port),
            "--max-s",
            f"{max_s:g}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        probe = cls(process)
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if line != READY:
            await probe.kill()
            raise RuntimeError("the /health probe did not start")
        return probe

    async def stop(self) -> list[tuple[float, float]]:
        """Stop probing; every sample taken."""
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGINT)
        try:
            output, _ = await asyncio.wait_for(self._process.communicate(), STOP_TIMEOUT_S)
        finally:
            await self.kill()
        if not output.strip():
            raise RuntimeError("the /health probe gave no samples")
        return [(float(sent), float(latency)) for sent, latency in orjson.loads(output)["samples"]]

    async def kill(self) -> None:
        if self._process.returncode is None:
            self._process.kill()
            await self._process.wait()


if __name__ == "__main__":
    main()
