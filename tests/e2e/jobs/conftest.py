"""The job-API fakes, served once per session and reset for each test, and gateways in front."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import StartGateway
from tests.e2e.jobs.deployments import MPX_KEY, VLMRUN_KEY, mpx_entry, vlmrun_entry
from tests.e2e.jobs.fakes import FakeMasterpieceX, FakeVLMRun
from tests.e2e.servers import serving

StartJobGateway = Callable[..., str]


@pytest.fixture(scope="session")
def _mpx_fake() -> Iterator[FakeMasterpieceX]:
    with serving(FakeMasterpieceX(MPX_KEY)) as fake:
        yield fake


@pytest.fixture(scope="session")
def _vlmrun_fake() -> Iterator[FakeVLMRun]:
    with serving(FakeVLMRun(VLMRUN_KEY)) as fake:
        yield fake


@pytest.fixture
def mpx(_mpx_fake: FakeMasterpieceX) -> FakeMasterpieceX:
    """The Masterpiece X fake, with no script and nothing recorded or stored."""
    _mpx_fake.reset()
    return _mpx_fake


@pytest.fixture
def vlmrun(_vlmrun_fake: FakeVLMRun) -> FakeVLMRun:
    """The VLM Run fake, with no script and nothing recorded."""
    _vlmrun_fake.reset()
    return _vlmrun_fake


# Client image URLs point at loopback, which only `allow_private_networks` lets the gateway fetch.
LOOPBACK_IMAGES = {"allow_private_networks": True}


@pytest.fixture
def start_mpx_gateway(start_gateway: StartGateway, mpx: FakeMasterpieceX) -> StartJobGateway:
    """A gateway serving `mpx-vision` (its entry's fields overridable) from the fake."""

    def start(**fields: Any) -> str:
        return start_gateway([mpx_entry(mpx, **fields)], images=LOOPBACK_IMAGES)

    return start


@pytest.fixture
def mpx_gateway(start_mpx_gateway: StartJobGateway) -> str:
    return start_mpx_gateway()


@pytest.fixture
def vlmrun_gateway(start_gateway: StartGateway, vlmrun: FakeVLMRun) -> str:
    """A gateway serving `vlm-invoice` (domain from options), `vlmrun/*` (domain from the model
    id, domains listed), `vlm-batch` (batch mode) and `vlm-nodomain` (no domain at all)."""
    models = [
        vlmrun_entry(vlmrun, "vlm-invoice", options={"domain": "document.invoice"}),
        vlmrun_entry(vlmrun, "vlmrun/*", options={"list_domains": True}),
        vlmrun_entry(vlmrun, "vlm-batch", options={"domain": "image.caption", "batch": True}),
        vlmrun_entry(vlmrun, "vlm-nodomain"),
    ]
    return start_gateway(models, images=LOOPBACK_IMAGES)
