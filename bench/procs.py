"""The processes under test: the mock upstream and a fresh gateway, and their /proc figures."""

from __future__ import annotations

import asyncio
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
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process, all its threads included."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS  # fields 14, 15


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


@dataclass
class Service:
    """A child process serving HTTP on `port`, its output going to `log`."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return sum(cpu_times(self.pid))

    def system_cpu_seconds(self) -> float:
        return cpu_times(self.pid)[1]

    def peak_rss_bytes(self) -> int:
        return peak_rss_bytes(self.pid)

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
        """SIGINT (a graceful shutdown) and wait; SIGKILL if it takes too long."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    async def wait_healthy(self) -> None:
        """Poll `GET /health` until it answers 200, or fail with the log's last lines."""
        request = f"GET /health HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n\r\n".encode()
        deadline = time.monotonic() + START_TIMEOUT_S
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


def _spawn(args: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    out: IO[bytes] = log.open("wb")
    try:
        return subprocess.Popen(
            args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    finally:
        out.close()


async def start_mock(root: Path, log: Path) -> Service:
    """The mock upstream in its own process, on a free port."""
    port = free_port()
    args = [sys.executable, "-m", "bench.mock", "--host", HOST, "--port", str(port)]
    service = Service("mock upstream", _spawn(args, log, root), port, log)
    await service.wait_healthy()
    return service


async def start_gateway(root: Path, config: Path, log: Path) -> Service:
    """`python -m app` with one worker, on a free port, once `GET /health` answers."""
    port = free_port()
    args = [
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
        "1",
    ]
    service = Service("gateway", _spawn(args, log, root), port, log)
    await service.wait_healthy()
    return service
