"""The series every Prometheus exporter is expected to have: `process_*` for the gateway's
processes, `python_info`, and `gateway_build_info{version}`.

With `--workers N` a scrape is answered by one worker, but the gateway is all of them: each
worker leaves a file named after its pid in the metrics folder while it lives, and the
`process_*` series add up every live worker (CPU seconds, memory, open files), the start
time being the earliest one."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from app import __version__

_WORKER_SUFFIX = ".worker"
# Series where the least value across workers says it, not the sum.
_LEAST = frozenset({"process_start_time_seconds", "process_max_fds"})


class BuildInfo(Collector):
    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "gateway_build_info", "The gateway's version; always 1.", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info


def describe_process(registry: CollectorRegistry) -> None:
    """This process's series and the build, for a registry scraped as it is."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(BuildInfo())


class Workers(Collector):
    """`process_*` summed over the live workers whose files are in `folder`."""

    def __init__(self, folder: str) -> None:
        self._folder = Path(folder)

    @staticmethod
    def enter(folder: str) -> None:
        (Path(folder) / f"{os.getpid()}{_WORKER_SUFFIX}").touch()

    @staticmethod
    def leave(folder: str) -> None:
        (Path(folder) / f"{os.getpid()}{_WORKER_SUFFIX}").unlink(missing_ok=True)

    def _pids(self) -> list[int]:
        return [int(path.stem) for path in self._folder.glob(f"*{_WORKER_SUFFIX}")]

    def collect(self) -> Iterator[Metric]:
        totals: dict[str, tuple[Metric, dict[str, float]]] = {}
        for pid in self._pids():
            # A worker gone without leaving says nothing: its /proc entry is gone too.
            collector = ProcessCollector(pid=functools.partial(int, pid), registry=None)
            for family in collector.collect():
                _, values = totals.setdefault(family.name, (family, {}))
                for sample in family.samples:
                    seen = values.get(sample.name)
                    if seen is None:
                        values[sample.name] = sample.value
                    elif sample.name in _LEAST:
                        values[sample.name] = min(seen, sample.value)
                    else:
                        values[sample.name] = seen + sample.value
        for family, values in totals.values():
            family.samples = [s._replace(value=values[s.name]) for s in family.samples]
            yield family


def describe_workers(registry: CollectorRegistry, folder: str) -> None:
    """Every live worker's series, added up, and the build, for a scrape of all workers."""
    registry.register(Workers(folder))
    PlatformCollector(registry=registry)
    registry.register(BuildInfo())
