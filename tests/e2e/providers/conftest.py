"""The provider fakes (Takeoff, Prediction Guard, Masterpiece X, VLM Run), served once per
session and reset for each test, and gateways in front of them with SDK clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai
import pytest

from tests.e2e.conftest import MakeClient, StartGateway
from tests.e2e.providers.deployments import (
    MPX_KEY,
    PG_KEY,
    VLMRUN_KEY,
    mpx_entry,
    pg_entry,
    takeoff_entry,
    vlmrun_entry,
)
from tests.e2e.providers.fakes import FakeMasterpieceX, FakePredictionGuard, FakeTakeoff, FakeVLMRun
from tests.e2e.servers import serving

StartJobGateway = Callable[..., str]

# Client image URLs point at loopback, which only `allow_private_networks` lets the gateway fetch.
LOOPBACK_IMAGES = {"allow_private_networks": True}


@pytest.fixture(scope="session")
def _takeoff_fake() -> Iterator[FakeTakeoff]:
    with serving(FakeTakeoff()) as fake:
        yield fake


@pytest.fixture(scope="session")
def _pg_fake() -> Iterator[FakePredictionGuard]:
    with serving(FakePredictionGuard(PG_KEY)) as fake:
        yield fake


@pytest.fixture(scope="session")
def _mpx_fake() -> Iterator[FakeMasterpieceX]:
    with serving(FakeMasterpieceX(MPX_KEY)) as fake:
        yield fake


@pytest.fixture(scope="session")
def _vlmrun_fake() -> Iterator[FakeVLMRun]:
    with serving(FakeVLMRun(VLMRUN_KEY)) as fake:
        yield fake


@pytest.fixture
def takeoff(_takeoff_fake: FakeTakeoff) -> FakeTakeoff:
    """The fake Takeoff server, with no script and no recorded requests."""
    _takeoff_fake.reset()
    return _takeoff_fake


@pytest.fixture
def pg(_pg_fake: FakePredictionGuard) -> FakePredictionGuard:
    """The fake Prediction Guard server, freshly reset."""
    _pg_fake.reset()
    return _pg_fake


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


@pytest.fixture
def takeoff_gateway(start_gateway: StartGateway, takeoff: FakeTakeoff) -> str:
    """`takeoff-vision` with default options, `takeoff-grouped` with both options set."""
    grouped = {"consumer_group": "vision-readers", "use_chat_template": True}
    models = [
        takeoff_entry("takeoff-vision", takeoff),
        takeoff_entry("takeoff-grouped", takeoff, options=grouped),
    ]
    return start_gateway(models, images=LOOPBACK_IMAGES)


@pytest.fixture
def pg_gateway(start_gateway: StartGateway, pg: FakePredictionGuard) -> str:
    return start_gateway([pg_entry("pg-vision", pg)], images=LOOPBACK_IMAGES)


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


@pytest.fixture
def takeoff_client(takeoff_gateway: str, make_client: MakeClient) -> openai.OpenAI:
    return make_client(takeoff_gateway)


@pytest.fixture
def pg_client(pg_gateway: str, make_client: MakeClient) -> openai.OpenAI:
    return make_client(pg_gateway)


@pytest.fixture
async def takeoff_async(takeoff_gateway: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{takeoff_gateway}/v1", api_key="test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def pg_async(pg_gateway: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{pg_gateway}/v1", api_key="test", max_retries=0
    ) as client:
        yield client
