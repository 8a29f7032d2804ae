"""A private `redis-server` on a free loopback port, which a test can stop and start again."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.exceptions import RedisError

from tests.conftest import skip_unless_ci
from tests.processes import HOST, free_port

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
_OWN_COMMANDS = {"hello", "config|resetstat", "info"}


class RedisServer:
    """One `redis-server` without persistence; `stop()` and `start()` play an outage."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.port = free_port()
        self._workdir = workdir
        self._log_path = workdir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start it (again, on the same port) and wait until it answers PING."""
        if self.running:
            return
        command = [
            self.executable,
            *("--bind", HOST, "--port", str(self.port)),
            *("--save", "", "--appendonly", "no"),
            *("--dir", str(self._workdir)),
        ]
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answers():
            if self._process.poll() is not None:
                log_text = self._log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"redis-server exited with {self._process.returncode}:\n{log_text}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server on port {self.port} did not answer")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop it now; clients see refused connections until `start()`."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """A hung Redis: connections are accepted but nothing is answered until the block ends."""
        assert self._process is not None
        assert self.running
        self._process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._process.send_signal(signal.SIGCONT)

    def flush(self) -> None:
        """Forget every key, so that no counter of an earlier test is still running."""
        with self._client() as client:
            client.flushall()

    def reset_stats(self) -> None:
        with self._client() as client:
            client.config_resetstat()

    def calls(self) -> dict[str, int]:
        """Commands served since `reset_stats()`, by name, as `INFO commandstats` counts them
        (those run by scripts included); failed ones (a script not loaded yet) and this
        helper's own left out."""
        with self._client() as client:
            stats = client.info("commandstats")
        calls = {
            name.removeprefix("cmdstat_"): int(row["calls"]) - int(row.get("failed_calls", 0))
            for name, row in stats.items()
        }
        return {name: n for name, n in calls.items() if n and name not in _OWN_COMMANDS}

    def stored_keys(self) -> list[str]:
        with self._client() as client:
            return sorted(key.decode() for key in client.keys("*"))

    def _client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=1, socket_connect_timeout=1)

    def _answers(self) -> bool:
        try:
            with self._client() as client:
                return bool(client.ping())
        except RedisError:
            return False


@contextmanager
def running_redis(folder: Path) -> Iterator[RedisServer]:
    """A `redis-server` of its own in `folder` while the block runs. Without one installed the
    tests that need it are skipped, except under CI, where that fails them: CI must run them."""
    executable = shutil.which("redis-server")
    if executable is None:
        skip_unless_ci("redis-server is not installed (apt-get install redis-server)", "Redis")
    server = RedisServer(executable, folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
