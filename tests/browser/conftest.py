"""The playground in headless Chromium: the system's browser driven by Playwright, `python -m
app` on loopback in front of the inspect model and a fake Masterpiece X, and screenshots."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import config_tree, skip_unless_ci
from tests.e2e.conftest import image_host  # noqa: F401 - the same image host
from tests.e2e.providers.deployments import MPX_KEY, mpx_entry
from tests.e2e.providers.fakes import FakeMasterpieceX
from tests.e2e.servers import ServedFakes
from tests.processes import Gateways

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "playground"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
# The machine's network is closed: Chromium's own background connections would only fail.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


def _chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Chromium, for this folder's tests only: while Playwright's sync API is open, its event
    loop counts as running in this thread, which other tests' own loops cannot share."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_unless_ci(
            "the playwright package is not installed (pip install -e '.[dev]')", "browser"
        )
    executable = _chromium()
    if executable is None:
        skip_unless_ci("no Chromium found (apt-get install chromium)", "browser")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def mpx(served_fakes: ServedFakes) -> FakeMasterpieceX:
    """The Masterpiece X fake behind the gateway's `mpx-vision`, freshly reset."""
    return served_fakes.fresh(FakeMasterpieceX, MPX_KEY)


def playground_models(mpx: FakeMasterpieceX) -> list[dict[str, Any]]:
    return [{"name": "inspect", "provider": "inspect"}, mpx_entry(mpx)]


# Image URLs point at loopback, which the gateway fetches from only when told.
FETCH_LOOPBACK_IMAGES = {"allow_private_networks": True}


@pytest.fixture(scope="session")
def gateway(served_fakes: ServedFakes, session_gateways: Gateways) -> str:
    """A gateway without keys, serving `inspect` and the job-based `mpx-vision`; it fetches
    image URLs even on loopback."""
    mpx = served_fakes.get(FakeMasterpieceX, MPX_KEY)
    config = config_tree(playground_models(mpx), images=FETCH_LOOPBACK_IMAGES)
    return session_gateways.start(config).url


StartOwnGateway = Callable[..., str]


@pytest.fixture
def start_own_gateway(mpx: FakeMasterpieceX, gateways: Gateways) -> StartOwnGateway:
    """Start a gateway like `gateway` with `server` settings of its own, for this test only:
    the failures it sees (and the cooldowns they start) stay out of the other tests."""

    def start(**server: Any) -> str:
        models = playground_models(mpx)
        return gateways.start(config_tree(models, images=FETCH_LOOPBACK_IMAGES, server=server)).url

    return start


@pytest.fixture
def own_gateway(start_own_gateway: StartOwnGateway) -> str:
    """A gateway like `gateway`, for this test only."""
    return start_own_gateway()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser tab; an uncaught script error or a blocked resource fails the test."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "Failed to load resource" not in message.text
            else None
        ),
    )
    try:
        yield tab
    finally:
        context.close()
    assert problems == []


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the tests leave a picture of each state of the page (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
