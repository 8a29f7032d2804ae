"""The watch kept over a gateway process under attack: memory growth and `/health` latency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

from tests.e2e.servers import serving
from tests.hostile.upstream_fakes import HostileUpstream
from tests.ops.processes import GatewayProcess, Gateways

PROBE = Path(__file__).with_name("upstream_probe.py")
# What an attack may cost the gateway at most, over its resident size before it.
RSS_GROWTH_MB = 100
HEALTH_BOUND_MS = 100


@dataclass(frozen=True)
class Observed:
    baseline_mb: float
    peak_mb: float
    slowest_health_ms: float
    probes: int
    failures: int

    @property
    def grew_mb(self) -> float:
        return self.peak_mb - self.baseline_mb

    def __str__(self) -> str:
        return (
            f"RSS {self.baseline_mb:.0f} MB -> peak {self.peak_mb:.0f} MB "
            f"(+{self.grew_mb:.0f} MB); /health slowest {self.slowest_health_ms:.0f} ms "
            f"over {self.probes} probes, {self.failures} failed"
        )


class Watch:
    """Probes `gateway` from a process of its own while the block runs; `observed` after.
    A gateway served in this process is given as its URL: then this process is watched."""

    def __init__(self, gateway: GatewayProcess | str) -> None:
        self._pid = os.getpid() if isinstance(gateway, str) else gateway.process.pid
        self._url = gateway if isinstance(gateway, str) else gateway.url
        self._probe: subprocess.Popen[str] | None = None
        self.observed: Observed | None = None

    def __enter__(self) -> Watch:
        command = [sys.executable, str(PROBE), str(self._pid), self._url]
        self._probe = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._probe.stdout is not None
        assert self._probe.stdout.readline().strip() == "ready"
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._probe is not None
        out, _ = self._probe.communicate(timeout=30)
        report = json.loads(out.strip().splitlines()[-1])
        self.observed = Observed(
            baseline_mb=report["baseline_kb"] / 1024,
            peak_mb=report["peak_kb"] / 1024,
            slowest_health_ms=report["slowest_health_ms"],
            probes=report["probes"],
            failures=report["failures"],
        )
        print(f"\n{self.observed}")  # noqa: T201 - shown with -rP: the figures the report quotes

    def assert_bounded(self, grew_mb: float = RSS_GROWTH_MB) -> None:
        """The gateway grew by less than `grew_mb` and `/health` always answered in time."""
        observed = self.observed
        assert observed is not None, "the watch has not ended"
        assert observed.grew_mb < grew_mb, str(observed)
        assert observed.failures == 0, str(observed)
        assert observed.slowest_health_ms < HEALTH_BOUND_MS, str(observed)


@pytest.fixture(scope="module")
def hostile_gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateways]:
    """Launches `python -m app` processes for a test module; all stop after it."""
    launcher = Gateways(tmp_path_factory.mktemp("hostile"))
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture(scope="module")
def hostile_upstream() -> Iterator[HostileUpstream]:
    """The hostile upstreams and image host, served on loopback for a test module."""
    with serving(HostileUpstream()) as upstream:
        yield upstream
