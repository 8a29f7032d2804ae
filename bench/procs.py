"""The processes under test: the mock upstream and a fresh gateway, and their /proc figures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.client import Connection

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
WORKER_SETTLE_S = 2.0  # after the last worker appears, for it to import the app and listen
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _stat_fields(pid: int) -> list[str]:
    """`/proc/<pid>/stat` after the command name: field 3 (the state) comes first."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process, all its threads included, and of the children it
    has waited for (which no longer show up anywhere else)."""
    fields = _stat_fields(pid)
    user = int(fields[11]) + int(fields[13])  # fields 14 and 16: utime, cutime
    system = int(fields[12]) + int(fields[14])  # fields 15 and 17: stime, cstime
    return user / _CLOCK_TICKS, system / _CLOCK_TICKS


def process_tree(pid: int) -> list[int]:
    """`pid` and all its living descendants, parents before their children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry))[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(entry))
    tree, index = [pid], 0
    while index < len(tree):
        tree += sorted(children.get(tree[index], []))
        index += 1
    return tree


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine spent, user and system, all cores.

    Interrupt time is left out: it is mostly the loopback traffic of the benchmark itself.
    """
    with open("/proc/stat") as stat:
        user, nice, system = (int(value) for value in stat.readline().split()[1:4])
    return (user + nice + system) / _CLOCK_TICKS


def own_cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (wrk, for one)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def peak_rss_bytes(pid: int) -> int:
    """The high-water mark of a process's resident memory (VmHWM)."""
    return _status_kib(pid, "VmHWM") * 1024


def rss_bytes(pid: int) -> int:
    """A process's resident memory now (VmRSS)."""
    return _status_kib(pid, "VmRSS") * 1024


def open_fds(pid: int) -> int:
    """How many file descriptors a process has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def sockets_to(pid: int, port: int) -> int:
    """How many of a process's TCP sockets are connected to `port` (its upstream connections,
    when `port` is the upstream's). Matched by inode through /proc/net/tcp."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    count = 0
    for table in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes:
                count += 1
    return count


def raise_open_file_limit(wanted: int) -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (up to the hard limit); the
    mock, the gateway and the probes inherit it. Returns the (soft, hard) limits now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# Processes in a server's tree that serve no requests: multiprocessing's helper.
_HELPERS = ("multiprocessing.resource_tracker",)


@dataclass
class Service:
    """A child process serving HTTP on `port`, its output going to `log`.

    A server may run as a tree of processes (a supervisor and its workers): CPU time is summed
    over the whole tree, and memory is that of the largest worker. Its workers are the
    processes below the first one, helpers aside; a server with no children is its own worker.
    """

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    health_path: str = "/health"

    @property
    def pid(self) -> int:
        return self.process.pid

    def tree_cpu(self) -> dict[int, tuple[float, float]]:
        """User and system CPU seconds of each living process in the tree, by pid."""
        found: dict[int, tuple[float, float]] = {}
        for pid in process_tree(self.pid):
            try:
                found[pid] = cpu_times(pid)
            except OSError:
                continue  # ended meanwhile
        return found

    def worker_pids(self) -> list[int]:
        tree = process_tree(self.pid)
        workers = [
            pid for pid in tree[1:] if not any(name in command_line(pid) for name in _HELPERS)
        ]
        return workers or tree[:1]

    def cpu_seconds(self) -> float:
        return sum(user + system for user, system in self.tree_cpu().values())

    def system_cpu_seconds(self) -> float:
        return sum(system for _, system in self.tree_cpu().values())

    def peak_rss_bytes(self) -> int:
        """The largest worker's high-water mark: the peak memory per worker."""
        return max(self.worker_peak_rss().values(), default=0)

    def worker_peak_rss(self) -> dict[int, int]:
        """Each worker's high-water mark of resident memory, by pid."""
        found: dict[int, int] = {}
        for pid in self.worker_pids():
            try:
                found[pid] = peak_rss_bytes(pid)
            except (OSError, RuntimeError):
                continue
        return found

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def open_fds(self) -> int:
        return open_fds(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGINT (a graceful shutdown) and wait; SIGKILL if it takes too long. Descendants
        still running once it has ended are killed too."""
        if self.process.poll() is not None:
            return
        descendants = process_tree(self.pid)[1:]
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pid in descendants:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    async def wait_healthy(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Poll `GET /health` (or `health_path`) until it answers 200, or fail with the log's
        last lines."""
        request = f"GET {self.health_path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n\r\n".encode()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                connection = await Connection.open(HOST, self.port, streaming=False)
                try:
                    if (await connection.send(request)).status == 200:
                        return
                finally:
                    connection.close()
            except OSError:
                pass
            await asyncio.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"the {self.name} did not become healthy; its log ends:\n{self.log_tail()}"
        )


def spawn(
    args: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A server process writing its output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out: IO[bytes] = log.open("wb")
    try:
        return subprocess.Popen(
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    finally:
        out.close()


async def start_mock(root: Path, log: Path) -> Service:
    """The mock upstream in its own process, on a free port."""
    port = free_port()
    args = [sys.executable, "-m", "bench.mock", "--host", HOST, "--port", str(port)]
    service = Service("mock upstream", spawn(args, log, root), port, log)
    await service.wait_healthy()
    return service


async def start_relay(root: Path, log: Path, target: Service) -> Service:
    """A bare TCP relay (`bench/relay.py`) to `target`, on a free port; `/health` is the
    target's, through it."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "bench.relay",
        "--port",
        str(port),
        "--target-port",
        str(target.port),
    ]
    service = Service("bare relay", spawn(args, log, root), port, log)
    await service.wait_healthy()
    return service


def gateway_args(config: Path, port: int, workers: int = 1) -> list[str]:
    """The command line of `python -m app` serving `config` on `port`."""
    return [
        sys.executable,
        "-m",
        "app",
        "--config",
        str(config),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


async def start_gateway(root: Path, config: Path, log: Path, workers: int = 1) -> Service:
    """`python -m app` with `workers` workers (one by default), on a free port, once
    `GET /health` answers and every worker has started."""
    port = free_port()
    args = gateway_args(config, port, workers)
    return await launch("gateway", args, port, root, log, workers=workers)


async def launch(
    name: str,
    args: list[str],
    port: int,
    root: Path,
    log: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    health_path: str = "/health",
    start_timeout_s: float = START_TIMEOUT_S,
) -> Service:
    """Start a server listening on `port`, and wait until it answers `health_path` and, with
    more than one worker, until every worker has started."""
    service = Service(name, spawn(args, log, root, env), port, log, health_path)
    await service.wait_healthy(start_timeout_s)
    if workers > 1:
        await wait_for_workers(service, workers)
    return service


async def wait_for_workers(service: Service, workers: int) -> None:
    """Wait until `workers` worker processes exist and each has had a moment to start serving
    (one answers /health before the others may have finished starting)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while len(service.worker_pids()) < workers:
        if time.monotonic() > deadline or service.process.poll() is not None:
            raise RuntimeError(
                f"the {service.name} did not start {workers} workers; its log ends:\n"
                f"{service.log_tail()}"
            )
        await asyncio.sleep(0.05)
    await asyncio.sleep(WORKER_SETTLE_S)
