"""podman as the container tests drive it: the settings file this machine needs, the base image
to build from, and containers that are always removed."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
# The shared tools' settings beside the repository: runc, cgroupfs and host networking.
SHARED_CONTAINERS_CONF = REPO_ROOT / ".." / "shared" / "tools" / "containers.conf"
LOCAL_BASE_IMAGE = "localhost/vg-python-base:3.11"
# The Dockerfile's default, fully qualified: podman resolves no short names without a
# registries.conf that lists search registries.
DEFAULT_BASE_IMAGE = "docker.io/library/python:3.11-slim"
BUILD_TIMEOUT_S = 840.0
COMMAND_TIMEOUT_S = 60.0
START_TIMEOUT_S = 60.0


def containers_conf() -> Path | None:
    """`CONTAINERS_CONF` when set, else the shared tools' file when it exists."""
    configured = os.environ.get("CONTAINERS_CONF")
    if configured:
        return Path(configured)
    return SHARED_CONTAINERS_CONF.resolve() if SHARED_CONTAINERS_CONF.exists() else None


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Podman:
    """Runs `podman` (and `podman-compose`) with this machine's settings."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.conf = containers_conf()
        self.env = dict(os.environ)
        if self.conf is not None:
            self.env["CONTAINERS_CONF"] = str(self.conf)

    def run(
        self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.executable, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} exited with {result.returncode}:\n{result.stderr[-4000:]}"
            )
        return result

    def base_image(self) -> str:
        """`VG_BASE_IMAGE`, else the local stand-in for python:3.11-slim when it is built."""
        configured = os.environ.get("VG_BASE_IMAGE")
        if configured:
            return configured
        if self.run("image", "exists", LOCAL_BASE_IMAGE, check=False).returncode == 0:
            return LOCAL_BASE_IMAGE
        return DEFAULT_BASE_IMAGE

    def build(self, tag: str, context: Path, log: Path) -> None:
        """`podman build` of the Dockerfile in `context`, its output kept in `log`."""
        with log.open("w") as output:
            result = subprocess.run(
                [
                    *(self.executable, "build", "--isolation", "chroot", "--format", "docker"),
                    *("--build-arg", f"BASE_IMAGE={self.base_image()}", "--tag", tag),
                    str(context),
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
        if result.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise AssertionError(f"podman build exited with {result.returncode}:\n{tail}")


class Container:
    """One detached container on the host's network, answering on `port`."""

    def __init__(self, podman: Podman, name: str, port: int) -> None:
        self.podman = podman
        self.name = name
        self.url = f"http://127.0.0.1:{port}"

    def inspect(self, template: str) -> str:
        return self.podman.run("inspect", "--format", template, self.name).stdout.strip()

    def exec(self, *command: str) -> str:
        return self.podman.run("exec", self.name, *command).stdout

    def logs(self) -> str:
        result = self.podman.run("logs", self.name, check=False)
        return result.stdout + result.stderr

    def wait_healthy(self) -> None:
        """Until `/health` answers 200; fails early, with the logs, if the container exits."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.inspect("{{.State.Running}}") != "true":
                raise AssertionError(f"{self.name} exited:\n{self.logs()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not answer /health:\n{self.logs()[-4000:]}")
            time.sleep(0.2)

    def remove(self) -> None:
        self.podman.run("rm", "--force", "--time", "0", self.name, check=False)
