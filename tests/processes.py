"""Gateways as operators run them: `python -m app` subprocesses on loopback, their output kept."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
# After a graceful shutdown uvicorn raises the signal it caught again, so SIGTERM ends a
# single-process server with that signal's status; a supervisor of workers exits with 0.
CLEAN_EXIT = (0, -signal.SIGTERM)
STARTED_LINE = "Application startup complete."
# Variables of the test run that would change what the gateway under test does.
_INHERITED_OVERRIDES = (
    "PROMETHEUS_MULTIPROC_DIR",
    "GATEWAY_CONFIG",
    "GATEWAY_WORKERS",
    "LOG_LEVEL",
)


def free_port() -> int:
    """A loopback port that was free a moment ago; the server binds it itself."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class GatewayProcess:
    """`python -m app --workers N` for one config, on a free loopback port; stdout and stderr
    go to one log file."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        config: dict[str, Any],
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        log_level: str = "info",
        listen: str = HOST,
        env_file: str = "",
    ) -> None:
        self.name = name
        self.workers = workers
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.config_path = workdir / f"{name}.yaml"
        self.log_path = workdir / f"{name}.log"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        # The `.env` file it reads: this text, never a developer's own `.env` in the clone.
        self.env_file_path = workdir / f"{name}.env"
        self.env_file_path.write_text(env_file)
        self._env = env or {}
        self._log_level = log_level
        self._listen = listen
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, f"{self.name} was never launched"
        return self._process

    def launch(self) -> None:
        environ = {k: v for k, v in os.environ.items() if k not in _INHERITED_OVERRIDES}
        environ.update(self._env, PYTHONUNBUFFERED="1")
        command = [
            *(sys.executable, "-m", "app", "--config", str(self.config_path)),
            *("--env-file", str(self.env_file_path)),
            *("--host", self._listen, "--port", str(self.port)),
            *("--workers", str(self.workers), "--log-level", self._log_level),
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its workers can be swept up as one group
            )

    def wait_ready(self) -> None:
        """Until `/health` answers and every worker has finished its startup."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (self._healthy() and self.log_text().count(STARTED_LINE) >= self.workers):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator sends it, without waiting for the exit."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def stop(self) -> int:
        """SIGTERM, as an orchestrator sends it; SIGKILL to the whole group if that hangs."""
        if self._process is None:
            return 0
        self.terminate()
        try:
            return self._process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            return self._process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_records(self) -> list[dict[str, Any]]:
        """Every line of the log as the JSON object it must be."""
        records = []
        for line in self.log_text().splitlines():
            if line.strip():
                record = json.loads(line)
                assert isinstance(record, dict), line
                records.append(record)
        return records


class Gateways:
    """Launches gateway processes for one test, and stops all of them afterwards."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self.started: list[GatewayProcess] = []

    def launch(self, config: dict[str, Any], **options: Any) -> GatewayProcess:
        """Start a gateway without waiting for it: several then start side by side."""
        name = f"gateway-{len(self.started) + 1}"
        gateway = GatewayProcess(self._workdir, name, config, **options)
        self.started.append(gateway)
        gateway.launch()
        return gateway

    def start(self, config: dict[str, Any], **options: Any) -> GatewayProcess:
        """Start a gateway and wait until all its workers serve."""
        gateway = self.launch(config, **options)
        gateway.wait_ready()
        return gateway

    def at(self, url: str) -> GatewayProcess:
        """The gateway started here that serves `url`."""
        [gateway] = [gateway for gateway in self.started if gateway.url == url]
        return gateway

    def stop_all(self) -> None:
        """SIGTERM to every gateway at once, then each is waited for (and killed if it hangs)."""
        for gateway in self.started:
            gateway.terminate()
        for gateway in self.started:
            gateway.stop()


class Spares:
    """Gateway processes launched ahead of need. From the second time a config is asked for
    (a fixture's gateway, a parametrized test's), the next process for it is launched at once
    and starts while the test runs; the next test that asks for the config takes it. A spare
    has served nobody before that test, which stops it like any other of its gateways.
    A test that changed the environment gets no spare (it would not have seen the change).
    """

    def __init__(self, workdir: Path, *, keep: int = 3) -> None:
        self._workdir = workdir
        self._keep = keep
        self._environ = _test_environ()
        self._asked: set[str] = set()
        self._waiting: dict[str, GatewayProcess] = {}  # by config text, oldest first
        self._retired: list[GatewayProcess] = []
        self._launched = 0

    def start(self, gateways: Gateways, config: dict[str, Any]) -> GatewayProcess:
        """A gateway for `config`, serving and owned by `gateways`: the spare for it if there
        is one, else one launched now."""
        text = yaml.safe_dump(config, sort_keys=False)
        as_launched = _test_environ() == self._environ
        gateway = self._waiting.pop(text, None) if as_launched else None
        if gateway is None:
            gateway = gateways.launch(config)
        else:
            gateways.started.append(gateway)
        if text in self._asked and as_launched:
            self._launch_spare(text, config)
        self._asked.add(text)
        gateway.wait_ready()
        return gateway

    def _launch_spare(self, text: str, config: dict[str, Any]) -> None:
        self._launched += 1
        spare = GatewayProcess(self._workdir, f"spare-{self._launched}", config)
        spare.launch()
        self._waiting[text] = spare
        while len(self._waiting) > self._keep:
            oldest = self._waiting.pop(next(iter(self._waiting)))
            oldest.terminate()
            self._retired.append(oldest)

    def stop_all(self) -> None:
        """Stop the spares no test took, as `Gateways.stop_all` does."""
        unused = [*self._waiting.values(), *self._retired]
        for gateway in unused:
            gateway.terminate()
        for gateway in unused:
            gateway.stop()


def _test_environ() -> dict[str, str]:
    """The environment a gateway launched now inherits, but for the name of the running test."""
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
