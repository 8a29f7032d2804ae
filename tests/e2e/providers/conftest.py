"""The provider fakes (Takeoff, Prediction Guard, Masterpiece X, VLM Run), served once per
session and reset for each test, and gateways in front of them with SDK clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import pytest

from tests.e2e.clients import async_sdk
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
from tests.e2e.servers import ServedFakes

StartJobGateway = Callable[..., str]

# Client image URLs point at loopback, which only `allow_private_networks` lets the gateway fetch.
LOOPBACK_IMAGES = {"allow_private_networks": True}


@pytest.fixture
def takeoff(served_fakes: ServedFakes) -> FakeTakeoff:
    """The fake Takeoff server, with no script and no recorded requests."""
    return served_fakes.fresh(FakeTakeoff)


@pytest.fixture
def pg(served_fakes: ServedFakes) -> FakePredictionGuard:
    """The fake Prediction Guard server, freshly reset."""
    return served_fakes.fresh(FakePredictionGuard, PG_KEY)


@pytest.fixture
def mpx(served_fakes: ServedFakes) -> FakeMasterpieceX:
    """The Masterpiece X fake, with no script and nothing recorded or stored."""
    return served_fakes.fresh(FakeMasterpieceX, MPX_KEY)


@pytest.fixture
def vlmrun(served_fakes: ServedFakes) -> FakeVLMRun:
    """The VLM Run fake, with no script and nothing recorded."""
    return served_fakes.fresh(FakeVLMRun, VLMRUN_KEY)


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
    async with async_sdk(takeoff_gateway) as client:
        yield client


@pytest.fixture
async def pg_async(pg_gateway: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with async_sdk(pg_gateway) as client:
        yield client
