"""The playground for everyone: labels, the keyboard alone, a phone's width, and a gateway key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.browser.conftest import playground_models
from tests.browser.playground import Playground, file_payload, image_bytes
from tests.conftest import config_tree
from tests.e2e.providers.deployments import MPX_KEY
from tests.e2e.providers.fakes import FakeMasterpieceX
from tests.e2e.servers import ServedFakes
from tests.processes import Gateways

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e

GATEWAY_KEY = "gw-browser-3f9a51c2"
# Each form control, named by the label a screen reader announces.
CONTROLS = [
    "Model",
    "Choose images",
    "Image URL",
    "Prompt",
    "Stream",
    "Inspect images",
    "Detail",
    "Max tokens",
]
UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter((el) => el.type !== "hidden" && !el.closest("[hidden]"))
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
    && !(el.tagName === "BUTTON" && el.textContent.trim()))
  .map((el) => el.outerHTML)"""


@pytest.fixture
def keyed_gateway(served_fakes: ServedFakes, gateways: Gateways) -> str:
    """A gateway that wants `GATEWAY_KEY` from every client."""
    mpx = served_fakes.get(FakeMasterpieceX, MPX_KEY)
    config = config_tree(playground_models(mpx), server={"api_keys": [GATEWAY_KEY]})
    return gateways.start(config).url


def test_every_control_has_a_label(page: Page, gateway: str) -> None:
    playground = Playground(page, gateway).open()
    playground.wait_for_model("inspect")

    for name in CONTROLS:
        assert page.get_by_label(name, exact=True).count() == 1, name
    assert page.evaluate(UNLABELLED) == []
    playground.model_picker.select_option(label="Other model id…")
    assert page.get_by_label("Model id", exact=True).is_visible()
    assert page.evaluate(UNLABELLED) == []


def test_the_keyboard_alone_picks_an_image_and_sends(page: Page, gateway: str) -> None:
    png = image_bytes(33, 21)
    playground = Playground(page, gateway).open()
    playground.pick("inspect")
    page.locator("#model-note", has_text="Takes up to").wait_for()  # the page has settled
    picker = page.get_by_label("Choose images")

    for _ in range(10):
        page.keyboard.press("Tab")
        if picker.evaluate("(el) => el === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the image picker")
    with page.expect_file_chooser(timeout=5_000) as chooser:
        picker.press("Space")
    chooser.value.set_files(files=[file_payload("k.png", png)])
    page.get_by_role("img", name="k.png").wait_for()
    page.get_by_label("Prompt").focus()
    page.keyboard.press("Control+Enter")
    playground.wait_until_done()

    assert f"33×21, {len(png)} bytes" in playground.answer.inner_text()


def test_an_image_dropped_on_the_drop_zone_is_added(page: Page, gateway: str) -> None:
    png = image_bytes(45, 27, "maroon")
    playground = Playground(page, gateway).open()
    playground.pick("inspect")

    transfer = page.evaluate_handle(
        """([name, bytes]) => {
            const transfer = new DataTransfer();
            const file = new File([new Uint8Array(bytes)], name, { type: "image/png" });
            transfer.items.add(file);
            return transfer;
        }""",
        ["dropped.png", list(png)],
    )
    page.locator("#drop-zone").dispatch_event("drop", {"dataTransfer": transfer})
    page.get_by_role("img", name="dropped.png").wait_for()
    playground.ask("Dropped?")
    playground.wait_until_done()

    assert f"45×27, {len(png)} bytes" in playground.answer.inner_text()


def test_a_narrow_screen_needs_no_sideways_scrolling(
    browser: Browser, gateway: str, screenshots: Path
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        playground = Playground(page, gateway).open()
        playground.pick("inspect")
        playground.upload("phone.png", image_bytes(120, 80, "purple"))
        playground.ask("What is this?", inspect=True)
        playground.wait_until_done()
        playground.inspection(1)

        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        answer = page.get_by_label("Answer text").bounding_box()
        send = page.get_by_role("button", name="Send").bounding_box()
        assert answer is not None
        assert send is not None
        assert answer["y"] > send["y"]  # one column: the answer comes after the form
        playground.screenshot(screenshots / "06-narrow.png")
    finally:
        context.close()


def test_a_gateway_key_is_asked_for_and_kept_in_the_page_only(
    page: Page, keyed_gateway: str, screenshots: Path
) -> None:
    assert httpx.get(f"{keyed_gateway}/v1/models").status_code == 401
    assert httpx.get(f"{keyed_gateway}/playground/models").status_code == 401
    playground = Playground(page, keyed_gateway).open()
    key_field = page.get_by_label("Gateway key", exact=True)
    key_field.wait_for()
    assert key_field.evaluate("(el) => el === document.activeElement")
    playground.screenshot(screenshots / "08-key-needed.png")

    key_field.fill(GATEWAY_KEY)
    page.get_by_role("button", name="Use key").click()
    playground.pick("inspect")
    playground.upload("k.png", image_bytes(12, 34))
    playground.ask("Size?")
    playground.wait_until_done()

    assert "12×34" in playground.answer.inner_text()
    stored = page.evaluate(
        "[localStorage.length, sessionStorage.length, document.cookie, location.href]"
    )
    assert stored == [0, 0, "", f"{keyed_gateway}/playground"]
    snippets = playground.text("#curl-snippet") + playground.text("#python-snippet")
    assert GATEWAY_KEY not in snippets
    assert "$GATEWAY_KEY" in snippets
    assert 'os.environ["GATEWAY_KEY"]' in snippets


def test_the_page_its_files_and_hints_are_gone_when_turned_off(
    mpx: FakeMasterpieceX, gateways: Gateways
) -> None:
    url = gateways.start(config_tree(playground_models(mpx), server={"playground": False})).url

    for path in ("", "/playground.js", "/snippets.js", "/playground.css", "/models"):
        response = httpx.get(f"{url}/playground{path}")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def test_the_page_loads_nothing_from_elsewhere(gateway: str) -> None:
    page = httpx.get(f"{gateway}/playground")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    linked = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    script = httpx.get(f"{gateway}/playground/playground.js").text
    linked += [f"playground/{name}" for name in re.findall(r'from "\./([^"]+)"', script)]

    assert len(linked) >= 5
    for link in linked:
        if link.startswith("#") or link.startswith("data:"):
            continue
        assert link.startswith("playground/"), link  # relative: this gateway's own files
        response = httpx.get(f"{gateway}/{link}")
        assert response.status_code == 200, link
        assert response.headers["content-type"].startswith(("text/css", "text/javascript"))
    assert httpx.get(f"{gateway}/playground/config.yaml").status_code == 404


def test_the_page_learns_each_models_image_limit_and_whether_it_polls_a_job(
    keyed_gateway: str,
) -> None:
    response = httpx.get(
        f"{keyed_gateway}/playground/models", headers={"Authorization": f"Bearer {GATEWAY_KEY}"}
    )

    assert response.json()["data"] == [
        {"id": "inspect", "max_images": 16, "jobs": False},
        {"id": "mpx-vision", "max_images": 16, "jobs": True},
    ]
