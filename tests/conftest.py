"""Shared fixtures: an isolated environment, a config factory and the session's fake upstreams."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, NoReturn

import pytest
import yaml

from app.config import GatewayConfig, parse_config
from tests.e2e.servers import ServedFakes


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
def anyio_backend() -> str:
    return "asyncio"


def make_config(models: list[dict[str, Any]] | None = None, **sections: Any) -> GatewayConfig:
    """A validated config from Python data, through the real loader."""
    tree: dict[str, Any] = {"models": models or [{"name": "inspect", "provider": "inspect"}]}
    tree.update(sections)
    return parse_config(yaml.safe_dump(tree), environ={})
