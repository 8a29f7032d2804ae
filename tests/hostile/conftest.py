"""Fixtures for the hostile-input suite: `python -m app` processes on loopback, attacked over
real sockets; `tests.hostile.watch.Watch` checks memory and `/health` meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ops.processes import Gateways

INSPECT_ONLY = [{"name": "inspect", "provider": "inspect"}]


def hostile_config(models: list[dict[str, Any]] | None = None, **sections: Any) -> dict[str, Any]:
    """A gateway config tree: `models` (default: only the offline `inspect`) and `sections`."""
    return {"state": {"backend": "memory"}, "models": models or INSPECT_ONLY, **sections}


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateways]:
    """Launches gateway processes shared by one module's cases; stopped when it ends."""
    launcher = Gateways(tmp_path_factory.mktemp("hostile"))
    try:
        yield launcher
    finally:
        launcher.stop_all()
