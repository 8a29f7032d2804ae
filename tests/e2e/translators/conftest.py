"""The Takeoff and Prediction Guard fakes and an image host, served once and reset per test, and
gateways in front of them with SDK clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai
import pytest

from tests.e2e.conftest import MakeClient, StartGateway
from tests.e2e.servers import serving
from tests.e2e.translators.fakes import FakePredictionGuard, FakeTakeoff
from tests.e2e.translators.helpers import PG_KEY, pg_entry, takeoff_entry

# A loopback image host is a private address: the gateway may fetch from it only when told.
IMAGES = {"allow_private_networks": True}


@pytest.fixture(scope="session")
def _takeoff_fake() -> Iterator[FakeTakeoff]:
    with serving(FakeTakeoff()) as fake:
        yield fake


@pytest.fixture(scope="session")
def _pg_fake() -> Iterator[FakePredictionGuard]:
    with serving(FakePredictionGuard(PG_KEY)) as fake:
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
def takeoff_gateway(start_gateway: StartGateway, takeoff: FakeTakeoff) -> str:
    """`takeoff-vision` with default options, `takeoff-grouped` with both options set."""
    grouped = {"consumer_group": "vision-readers", "use_chat_template": True}
    models = [
        takeoff_entry("takeoff-vision", takeoff),
        takeoff_entry("takeoff-grouped", takeoff, options=grouped),
    ]
    return start_gateway(models, images=IMAGES)


@pytest.fixture
def pg_gateway(start_gateway: StartGateway, pg: FakePredictionGuard) -> str:
    return start_gateway([pg_entry("pg-vision", pg)], images=IMAGES)


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
