"""Fixtures for the deployment tests: podman (skipped without it, except under CI) and the
gateway image, built once per session and removed at its end."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import skip_unless_ci
from tests.deploy.podman import REPO_ROOT, Podman, unique_name

PODMAN_MISSING = "podman is not installed (apt-get install podman, see .ci/run)"


@pytest.fixture(scope="session")
def podman() -> Podman:
    """podman with this machine's settings. Without it the tests that need it are skipped,
    except under CI, where that fails them: CI must run them."""
    executable = shutil.which("podman")
    if executable is None:
        skip_unless_ci(PODMAN_MISSING, "container")
    return Podman(executable)


@pytest.fixture(scope="session")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The repository's Dockerfile built under a tag of its own, removed after the session."""
    tag = f"localhost/{unique_name('vision-gateway-test')}:latest"
    log = tmp_path_factory.mktemp("build") / "build.log"
    try:
        podman.build(tag, REPO_ROOT, log)
        yield tag
    finally:
        podman.run("rmi", "--force", tag, check=False)
