"""Real servers on loopback: fake upstreams, `python -m app` gateways in front of them, and SDK
clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import config_tree
from tests.e2e.clients import async_sdk, sdk
from tests.e2e.deployments import default_models
from tests.e2e.fakes.images import ImageHost
from tests.e2e.fakes.openai_compat import FakeUpstream
from tests.e2e.servers import ServedFakes
from tests.processes import Gateways, Spares

StartGateway = Callable[..., str]
AccessLog = Callable[[str], list[dict[str, Any]]]
MakeClient = Callable[..., openai.OpenAI]


@pytest.fixture
def openai_upstream(served_fakes: ServedFakes) -> FakeUpstream:
    """The OpenAI-flavoured fake, with no script and no recorded requests."""
    return served_fakes.fresh(FakeUpstream, "openai")


@pytest.fixture
def aimlapi_upstream(served_fakes: ServedFakes) -> FakeUpstream:
    """The AI/ML API-flavoured fake (201 replies, its own error body), freshly reset."""
    return served_fakes.fresh(FakeUpstream, "aimlapi")


@pytest.fixture
def image_host(served_fakes: ServedFakes) -> ImageHost:
    """A web server on loopback holding client images, emptied for each test."""
    return served_fakes.fresh(ImageHost)


@pytest.fixture(scope="session")
def gateway(served_fakes: ServedFakes, session_gateways: Gateways) -> str:
    """The base URL of a gateway serving `default_models` in front of both fakes."""
    fakes = served_fakes.get(FakeUpstream, "openai"), served_fakes.get(FakeUpstream, "aimlapi")
    return session_gateways.start(config_tree(default_models(*fakes))).url


@pytest.fixture(scope="session")
def spare_gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spares]:
    """Gateway processes launched ahead of the tests that will ask for their configs."""
    spares = Spares(tmp_path_factory.mktemp("spare-gateways"))
    try:
        yield spares
    finally:
        spares.stop_all()


@pytest.fixture
def start_gateway(gateways: Gateways, spare_gateways: Spares) -> StartGateway:
    """Start a gateway process for `make_config(models, **sections)` and wait until it serves;
    it stops after the test. Returns its base URL."""

    def start(models: list[dict[str, Any]], **sections: Any) -> str:
        return spare_gateways.start(gateways, config_tree(models, **sections)).url

    return start


@pytest.fixture
def access_log(gateways: Gateways) -> AccessLog:
    """The request lines (logger `app.access`) that a gateway of this test, given by its URL,
    has written so far: JSON objects, as an operator reads them."""

    def lines(url: str) -> list[dict[str, Any]]:
        records = gateways.at(url).log_records()
        return [record for record in records if record.get("logger") == "app.access"]

    return lines


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """SDK clients for any gateway URL, closed after the test."""
    with ExitStack() as stack:

        def make(url: str, api_key: str = "test") -> openai.OpenAI:
            return stack.enter_context(sdk(url, api_key))

        yield make


@pytest.fixture
def client(gateway: str, make_client: MakeClient) -> openai.OpenAI:
    return make_client(gateway)


@pytest.fixture
async def async_client(gateway: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with async_sdk(gateway) as client:
        yield client


@pytest.fixture
def http(gateway: str) -> Iterator[httpx.Client]:
    """A plain HTTP client for what the SDK hides: raw bodies, headers and framing."""
    with httpx.Client(base_url=gateway, timeout=10) as client:
        yield client
