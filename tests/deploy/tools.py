"""The linters and validators of the dev environment, run from the interpreter's own venv."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.deploy.podman import REPO_ROOT

TOOL_TIMEOUT_S = 120.0


def dev_tool(name: str) -> str:
    """The executable installed beside this Python (the dev venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    assert found, f"{name} is not installed: it comes with the dev dependencies (make test)"
    return found


def run_tool(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool from the repository root; its output is returned, its status not checked."""
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        check=False,
    )
