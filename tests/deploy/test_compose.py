"""`docker-compose.yml` validates, and runs the gateway on its Redis with the keys from `.env`."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from app.config import load_config
from tests.deploy.podman import REPO_ROOT, Podman
from tests.deploy.tools import dev_tool, run_tool

CONFIG = REPO_ROOT / "config.yaml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
# Compose settings a developer's shell may hold, which would change the rendered file.
_COMPOSE_VARIABLES = ("BASE_IMAGE", "GATEWAY_PORT", "GATEWAY_WORKERS", "LOG_LEVEL")


@pytest.fixture(scope="module")
def rendered(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`podman-compose config`: the file validated and its variables resolved, from an empty
    env file rather than any `.env` of the checkout."""
    env_file = tmp_path_factory.mktemp("compose") / "empty.env"
    env_file.touch()
    env = {k: v for k, v in podman.env.items() if k not in _COMPOSE_VARIABLES}
    command = [dev_tool("podman-compose"), "--env-file", str(env_file)]

    result = run_tool(*command, "--file", "docker-compose.yml", "config", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


def test_the_gateway_shares_state_in_the_compose_redis(rendered: dict[str, Any]) -> None:
    gateway = rendered["services"]["gateway"]
    environment = gateway["environment"]

    config = load_config(CONFIG, environ=environment)

    assert config.state.backend == "redis"
    redis_host = urlsplit(config.state.url).hostname
    assert redis_host in rendered["services"]
    assert redis_host in gateway["depends_on"]


def test_the_gateway_serves_the_mounted_config_with_keys_from_an_optional_env_file(
    rendered: dict[str, Any],
) -> None:
    gateway = rendered["services"]["gateway"]

    assert "./config.yaml:/app/config.yaml:ro" in gateway["volumes"]
    assert gateway["env_file"] == [{"path": ".env", "required": False}]
    assert gateway["environment"]["PORT"] == "8080"
    assert gateway["ports"] == ["8080:8080"]
    assert gateway["build"]["args"] == ["BASE_IMAGE=python:3.11-slim"]


def test_env_example_lists_every_variable_of_config_yaml() -> None:
    variables = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", CONFIG.read_text()))
    listed = set(re.findall(r"^#? ?([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))

    # `VAR` is the header's example; docker-compose.yml itself sets the state variables.
    assert variables - {"VAR", "STATE_BACKEND", "REDIS_URL"} <= listed


def test_without_the_compose_variables_config_yaml_keeps_state_in_memory() -> None:
    assert load_config(CONFIG, environ={}).state.backend == "memory"
