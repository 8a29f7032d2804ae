"""Shared fixtures: an isolated environment, config factories, the session's fake upstreams and
gateway processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, NoReturn

import pytest
import yaml

from app.config import GatewayConfig, parse_config
from tests.e2e.servers import ServedFakes
from tests.processes import Gateways


def skip_unless_ci(reason: str, suite: str) -> NoReturn:
    """Skip for want of a tool (`reason` says which), except under CI, which must run the
    `suite` tests: there the missing tool fails them."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the {suite} tests", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """Each test sees the environment it started with, whatever it sets."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def served_fakes() -> Iterator[ServedFakes]:
    """The session's fake upstreams on loopback, each served from its first use to the end."""
    with ExitStack() as stack:
        yield ServedFakes(stack)


@pytest.fixture
def gateways(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Gateways]:
    """Launches `python -m app` processes; they are stopped after the test, and their logs
    are attached to its report."""
    launcher = Gateways(tmp_path_factory.mktemp("gateways"))
    try:
        yield launcher
    finally:
        launcher.stop_all()
        for gateway in launcher.started:
            request.node.add_report_section("teardown", f"{gateway.name} log", gateway.log_tail())


@pytest.fixture(scope="session")
def session_gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateways]:
    """Launches `python -m app` processes that the session's tests share; stopped at its end."""
    launcher = Gateways(tmp_path_factory.mktemp("session-gateways"))
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _tree(models: list[dict[str, Any]] | None, sections: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {"models": models or [{"name": "inspect", "provider": "inspect"}]}
    tree.update(sections)
    return tree


def make_config(models: list[dict[str, Any]] | None = None, **sections: Any) -> GatewayConfig:
    """A validated config from Python data, through the real loader."""
    return parse_config(yaml.safe_dump(_tree(models, sections)), environ={})


def config_tree(models: list[dict[str, Any]] | None = None, **sections: Any) -> dict[str, Any]:
    """The YAML tree of `make_config(models, **sections)`, for a gateway process to read from a
    file. It is validated here first, so that a mistake fails the test with the loader's
    message instead of a process that exits."""
    tree = _tree(models, sections)
    parse_config(yaml.safe_dump(tree), environ={})
    return tree
