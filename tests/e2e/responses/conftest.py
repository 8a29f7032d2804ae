"""Fixtures for the Responses API tests: every fake upstream and a gateway serving one model
per provider kind in front of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import pytest

from tests.e2e.clients import async_sdk
from tests.e2e.conftest import MakeClient, StartGateway
from tests.e2e.deployments import entry
from tests.e2e.fakes.images import ImageHost
from tests.e2e.fakes.openai_compat import FakeUpstream
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

# Client images on the loopback image host are private addresses: allowed here.
LOOPBACK_IMAGES = {"allow_private_networks": True}

Fakes = dict[str, Any]


@pytest.fixture
def fakes(
    openai_upstream: FakeUpstream,
    aimlapi_upstream: FakeUpstream,
    image_host: ImageHost,
    served_fakes: ServedFakes,
) -> Fakes:
    """Every upstream, freshly reset, by provider kind (and the image host)."""
    return {
        "openai": openai_upstream,
        "aimlapi": aimlapi_upstream,
        "predictionguard": served_fakes.fresh(FakePredictionGuard, PG_KEY),
        "takeoff": served_fakes.fresh(FakeTakeoff),
        "masterpiecex": served_fakes.fresh(FakeMasterpieceX, MPX_KEY),
        "vlmrun": served_fakes.fresh(FakeVLMRun, VLMRUN_KEY),
        "images": image_host,
    }


def every_provider(fakes: Fakes) -> list[dict[str, Any]]:
    """One model per provider kind, named after it."""
    return [
        entry("openai", fakes["openai"], upstream_model="upstream-vision"),
        entry("aimlapi", fakes["aimlapi"], upstream_model="upstream-aiml"),
        pg_entry("predictionguard", fakes["predictionguard"]),
        takeoff_entry("takeoff", fakes["takeoff"]),
        mpx_entry(fakes["masterpiecex"], "masterpiecex"),
        vlmrun_entry(fakes["vlmrun"], "vlmrun", options={"domain": "image.caption"}),
        {"name": "inspect", "provider": "inspect"},
    ]


StartAll = Callable[..., str]


@pytest.fixture
def start_all(start_gateway: StartGateway, fakes: Fakes) -> StartAll:
    """Start a gateway serving `every_provider` (plus `extra` models, and config sections)."""

    def start(*extra: dict[str, Any], **sections: Any) -> str:
        sections.setdefault("images", LOOPBACK_IMAGES)
        return start_gateway([*every_provider(fakes), *extra], **sections)

    return start


@pytest.fixture
def all_gateway(start_all: StartAll) -> str:
    return start_all()


@pytest.fixture
def sync_client(all_gateway: str, make_client: MakeClient) -> openai.OpenAI:
    return make_client(all_gateway)


@pytest.fixture
async def async_responses_client(all_gateway: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with async_sdk(all_gateway) as client:
        yield client
