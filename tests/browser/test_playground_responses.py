"""The playground's API switch in a real browser: the same request sent to `/v1/responses`,
its events read by the page, its errors shown, and its code snippets in the Responses form."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser.playground import Playground, data_uri, image_bytes
from tests.browser.test_playground import random_size, run
from tests.e2e.providers.fakes import FakeMasterpieceX, MPXJob

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request

pytestmark = pytest.mark.e2e


def responses_body(model: str, prompt: str, *images: str) -> dict[str, Any]:
    """The Responses body the page sends for `prompt` and image URLs at the default detail."""
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": prompt}]
    parts += [{"type": "input_image", "image_url": url, "detail": "auto"} for url in images]
    return {"model": model, "input": [{"role": "user", "content": parts}]}


def gateway_response_text(gateway: str, body: dict[str, Any]) -> str:
    response = httpx.post(f"{gateway}/v1/responses", json=body, timeout=10)
    response.raise_for_status()
    [message] = response.json()["output"]
    text: str = message["content"][0]["text"]
    return text


def sent_paths(page: Page) -> list[str]:
    """The paths of the POST requests the page makes from now on."""
    paths: list[str] = []

    def seen(request: Request) -> None:
        if request.method == "POST":
            paths.append(request.url.split("/", 3)[3])

    page.on("request", seen)
    return paths


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "plain"])
def test_a_response_with_an_uploaded_image(
    page: Page, gateway: str, screenshots: Path, stream: bool
) -> None:
    width, height = random_size()
    png = image_bytes(width, height)
    playground = Playground(page, gateway).open()
    posts = sent_paths(page)
    playground.pick("inspect")
    playground.upload("square.png", png)

    playground.use_api("Responses")
    playground.ask("Describe this image.", stream=stream)
    playground.wait_until_done()

    assert posts == ["v1/responses"]
    expected = gateway_response_text(
        gateway, responses_body("inspect", "Describe this image.", data_uri(png, "image/png"))
    )
    assert playground.answer.inner_text() == expected
    assert f"image/png, {width}×{height}, {len(png)} bytes" in expected
    assert playground.text("#usage") != "–"
    assert playground.text("#error") == "" or not page.locator("#error").is_visible()
    playground.screenshot(screenshots / f"20-responses-{'streamed' if stream else 'plain'}.png")


def test_switching_back_sends_chat_completions_again(page: Page, gateway: str) -> None:
    playground = Playground(page, gateway).open()
    posts = sent_paths(page)
    playground.pick("inspect")

    playground.use_api("Responses")
    playground.ask("One.")
    playground.wait_until_done()
    playground.use_api("Chat Completions")
    playground.ask("Two.")
    playground.wait_until_done()

    assert posts == ["v1/responses", "v1/chat/completions"]
    assert "1 message(s)" in playground.answer.inner_text()


def test_a_failed_job_shows_the_error_event_of_the_response_stream(
    page: Page, own_gateway: str, mpx: FakeMasterpieceX
) -> None:
    reason = f"model overloaded #{random.randint(100, 999)}"
    mpx.script(MPXJob(fail=reason))
    playground = Playground(page, own_gateway).open()
    playground.pick("mpx-vision")
    playground.upload("square.png", image_bytes(20, 20))

    playground.use_api("Responses")
    playground.ask("What is in this image?", stream=True)
    playground.wait_for_error()

    assert playground.text("#error-status") == "in the stream"
    assert playground.text("#error-code") == "job_failed"
    assert reason in playground.text("#error-message")
    assert playground.status.get_attribute("data-state") == "error"


def test_the_snippets_show_the_responses_form_and_run(
    page: Page, gateway: str, tmp_path: Path
) -> None:
    png = image_bytes(*random_size())
    prompt = f"Count the pixels, it's {random.randint(1, 99)}$ worth"
    playground = Playground(page, gateway).open()
    playground.pick("inspect")
    playground.upload("my image.png", png)
    playground.use_api("Responses")
    playground.ask(prompt, stream=True)
    playground.wait_until_done()
    answer = playground.answer.inner_text()
    curl = playground.text("#curl-snippet")
    python = playground.text("#python-snippet")

    assert "/v1/responses" in curl
    assert "input_image" in curl
    assert "client.responses.create(" in python
    assert "my image.png" in python
    (tmp_path / "my image.png").write_bytes(png)
    assert run([sys.executable, "-c", python], tmp_path).strip() == answer
    assert streamed_response_text(run(["bash", "-c", curl], tmp_path)) == answer


def streamed_response_text(body: str) -> str:
    """The text deltas of a raw Responses event stream, joined; it must have completed."""
    events = [
        json.loads(line[len("data: ") :]) for line in body.splitlines() if line.startswith("data: ")
    ]
    assert events[-1]["type"] == "response.completed"
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
