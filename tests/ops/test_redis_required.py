"""Without `redis-server`, the tests that need it are skipped with their reason, except under
CI, where they fail: CI must never skip them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import REPO_ROOT

NEEDS_REDIS = "tests/ops/test_state_outage.py::test_redis_server_answers"


def run_without_redis(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """That one test in a pytest run whose PATH holds no `redis-server`."""
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    environ.update(env, PATH=str(tmp_path))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            NEEDS_REDIS,
            "-q",
            *("-p", "no:cacheprovider", "-p", "no:hypothesispytest"),
        ],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_redis_the_tests_that_need_it_are_skipped(tmp_path: Path) -> None:
    result = run_without_redis(tmp_path)

    assert result.returncode == pytest.ExitCode.OK, result.stdout
    assert "1 skipped" in result.stdout
    assert "SKIPPED" in result.stdout
    assert "redis-server is not installed" in result.stdout


def test_under_ci_without_redis_they_fail(tmp_path: Path) -> None:
    result = run_without_redis(tmp_path, CI="true")

    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "1 error" in result.stdout
    assert "CI must run the Redis tests" in result.stdout
