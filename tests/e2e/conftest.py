"""Real servers on loopback: fake upstreams, the gateway in front of them, and SDK clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import openai
import pytest

from app.main import create_app
from tests.conftest import make_config
from tests.e2e.deployments import default_models
from tests.e2e.fakes.images import ImageHost
from tests.e2e.fakes.openai_compat import FakeUpstream, Flavour
from tests.e2e.servers import serve_in_thread, serving

StartGateway = Callable[..., str]
MakeClient = Callable[..., openai.OpenAI]


def _serve_fake(flavour: Flavour) -> Iterator[FakeUpstream]:
    with serving(FakeUpstream(flavour)) as fake:
        yield fake


@pytest.fixture(scope="session")
def _openai_fake() -> Iterator[FakeUpstream]:
    yield from _serve_fake("openai")


@pytest.fixture(scope="session")
def _aimlapi_fake() -> Iterator[FakeUpstream]:
    yield from _serve_fake("aimlapi")


@pytest.fixture
def openai_upstream(_openai_fake: FakeUpstream) -> FakeUpstream:
    """The OpenAI-flavoured fake, with no script and no recorded requests."""
    _openai_fake.reset()
    return _openai_fake


@pytest.fixture
def aimlapi_upstream(_aimlapi_fake: FakeUpstream) -> FakeUpstream:
    """The AI/ML API-flavoured fake (201 replies, its own error body), freshly reset."""
    _aimlapi_fake.reset()
    return _aimlapi_fake


@pytest.fixture(scope="session")
def _image_host() -> Iterator[ImageHost]:
    with serving(ImageHost()) as host:
        yield host


@pytest.fixture
def image_host(_image_host: ImageHost) -> ImageHost:
    """A web server on loopback holding client images, emptied for each test."""
    _image_host.reset()
    return _image_host


@pytest.fixture(scope="session")
def gateway(_openai_fake: FakeUpstream, _aimlapi_fake: FakeUpstream) -> Iterator[str]:
    """The base URL of a gateway serving `default_models` in front of both fakes."""
    config = make_config(default_models(_openai_fake, _aimlapi_fake))
    with serve_in_thread(create_app(config), ready_path="/health") as url:
        yield url


@pytest.fixture
def start_gateway() -> Iterator[StartGateway]:
    """Start a gateway for `make_config(models, **sections)`; it stops after the test."""
    with ExitStack() as stack:

        def start(models: list[dict[str, Any]], **sections: Any) -> str:
            app = create_app(make_config(models, **sections))
            return stack.enter_context(serve_in_thread(app, ready_path="/health"))

        yield start


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """SDK clients for any gateway URL, closed after the test."""
    with ExitStack() as stack:

        def make(url: str, api_key: str = "test") -> openai.OpenAI:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=api_key, max_retries=0)
            return stack.enter_context(client)

        yield make


@pytest.fixture
def client(gateway: str, make_client: MakeClient) -> openai.OpenAI:
    return make_client(gateway)


@pytest.fixture
async def async_client(gateway: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key="test", max_retries=0)
    async with client:
        yield client


@pytest.fixture
def http(gateway: str) -> Iterator[httpx.Client]:
    """A plain HTTP client for what the SDK hides: raw bodies, headers and framing."""
    with httpx.Client(base_url=gateway, timeout=10) as client:
        yield client
