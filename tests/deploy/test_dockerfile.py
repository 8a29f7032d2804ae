"""The Dockerfile passes hadolint and keeps the promises the README makes about the image."""

from __future__ import annotations

import re

from tests.deploy.podman import REPO_ROOT
from tests.deploy.tools import dev_tool, run_tool

DOCKERFILE = REPO_ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments left out."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            pairs.append((keyword.upper(), arguments.strip()))
    return pairs


def test_hadolint_finds_nothing() -> None:
    hadolint = dev_tool("hadolint")

    # "style" is the lowest threshold: any finding at all fails.
    result = run_tool(hadolint, "--no-color", "--failure-threshold", "style", "Dockerfile")

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_image_is_an_argument_defaulting_to_python_slim() -> None:
    steps = instructions()

    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
    stages = [arguments for keyword, arguments in steps if keyword == "FROM"]
    assert stages == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]


def test_the_final_stage_runs_as_a_numeric_non_root_user_with_a_healthcheck() -> None:
    steps = instructions()
    final = steps[max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM") :]
    keywords = [keyword for keyword, _ in final]

    (user,) = [arguments for keyword, arguments in final if keyword == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "numeric, so that runAsNonRoot can check it"
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0
    (healthcheck,) = [arguments for keyword, arguments in final if keyword == "HEALTHCHECK"]
    assert "/health" in healthcheck
    assert "RUN" not in keywords[keywords.index("USER") :], "nothing runs as root after USER"
    (command,) = [arguments for keyword, arguments in final if keyword == "CMD"]
    assert '"exec python -m app' in command
