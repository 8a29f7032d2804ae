"""The playground in a real browser: a streamed answer, an error, a job, inspect and code."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.browser.conftest import StartOwnGateway
from tests.browser.playground import Playground, chat_body, data_uri, gateway_answer, image_bytes
from tests.e2e.providers.fakes import FakeMasterpieceX, ImageHost, MPXJob

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

MS = re.compile(r"^\d+ ms$")


def random_size() -> tuple[int, int]:
    return random.randint(40, 400), random.randint(40, 400)


def test_an_inspect_answer_streams_in_with_the_uploaded_image_size(
    page: Page, gateway: str, screenshots: Path
) -> None:
    width, height = random_size()
    png = image_bytes(width, height)
    playground = Playground(page, gateway).open()
    playground.wait_for_model("inspect")
    layout = page.evaluate("getComputedStyle(document.querySelector('.layout')).display")
    assert layout == "grid"  # the stylesheet loaded
    playground.screenshot(screenshots / "01-loaded.png")

    playground.pick("inspect")
    playground.upload("square.png", png)
    playground.ask("Describe this image.", stream=True)
    playground.wait_until_done()

    shown = playground.answer.inner_text()
    expected = gateway_answer(
        gateway, chat_body("inspect", "Describe this image.", data_uri(png, "image/png"))
    )
    assert shown == expected
    assert f"image/png, {width}×{height}, {len(png)} bytes" in shown
    assert MS.match(playground.text("#ttft"))
    assert MS.match(playground.text("#total"))
    assert "non-streamed" in playground.text("#overhead")
    assert re.match(r"^\d+ prompt \+ \d+ completion = \d+$", playground.text("#usage"))
    assert playground.text("#request-id") not in ("", "–")
    playground.screenshot(screenshots / "02-inspect-streamed.png")


def test_an_unknown_model_shows_the_error_type_and_code(
    page: Page, gateway: str, screenshots: Path
) -> None:
    playground = Playground(page, gateway).open()
    playground.wait_for_model("inspect")

    playground.type_model("no-such-model")
    playground.ask("Anything?")
    playground.wait_for_error()

    direct = httpx.post(
        f"{gateway}/v1/chat/completions", json=chat_body("no-such-model", "Anything?"), timeout=10
    )
    error = direct.json()["error"]
    assert playground.text("#error-status") == f"HTTP {direct.status_code}"
    assert playground.text("#error-type") == error["type"] == "invalid_request_error"
    assert playground.text("#error-code") == error["code"] == "model_not_found"
    assert playground.text("#error-message") == error["message"]
    assert playground.answer.inner_text() == ""
    assert playground.status.get_attribute("data-state") == "error"
    playground.screenshot(screenshots / "03-error-unknown-model.png")


def test_a_job_based_model_shows_the_wait_then_the_answer(
    page: Page, start_own_gateway: StartOwnGateway, mpx: FakeMasterpieceX, screenshots: Path
) -> None:
    gateway = start_own_gateway(stream_keepalive_s=0.25)
    output = f"A teal square, job {random.randint(1000, 9999)}."
    mpx.script(MPXJob(duration_s=2.0, output=output))
    playground = Playground(page, gateway).open()
    playground.pick("mpx-vision")
    assert "job" in playground.text("#model-note")
    playground.upload("square.png", image_bytes(64, 48))

    playground.ask("What is in this image?", stream=True)
    page.locator("#status[data-state=waiting]").wait_for(timeout=5_000)
    page.locator("#status", has_text="keepalive").wait_for(timeout=5_000)
    waiting = playground.status.inner_text()
    assert re.search(r"Waiting for the job… [\d.]+ s · \d+ keepalives?", waiting), waiting
    assert playground.answer.inner_text() == ""
    playground.screenshot(screenshots / "04-job-waiting.png")

    playground.wait_until_done()
    assert playground.answer.inner_text() == output
    assert len(mpx.polls) > 2  # answered by polling the job to its end
    playground.screenshot(screenshots / "05-job-answer.png")


def test_a_job_based_model_not_streamed_shows_the_wait_too(
    page: Page, gateway: str, mpx: FakeMasterpieceX
) -> None:
    mpx.script(MPXJob(duration_s=1.5, output="Whole, at the end."))
    playground = Playground(page, gateway).open()
    playground.pick("mpx-vision")
    playground.upload("square.png", image_bytes(16, 16))

    playground.ask("What is in this image?", stream=False)
    page.locator("#status", has_text="Waiting for the job…").wait_for(timeout=1_000)
    assert playground.answer.inner_text() == ""
    playground.wait_until_done()

    assert playground.answer.inner_text() == "Whole, at the end."
    assert re.match(r"^\d+\.\d\d ms$", playground.text("#overhead"))


def test_a_job_that_fails_shows_the_error_sent_inside_the_stream(
    page: Page, own_gateway: str, mpx: FakeMasterpieceX
) -> None:
    reason = f"model overloaded #{random.randint(100, 999)}"
    mpx.script(MPXJob(fail=reason))
    playground = Playground(page, own_gateway).open()
    playground.pick("mpx-vision")
    playground.upload("square.png", image_bytes(20, 20))

    playground.ask("What is in this image?", stream=True)
    playground.wait_for_error()

    assert playground.text("#error-status") == "in the stream"
    assert playground.text("#error-type") == "upstream_error"
    assert playground.text("#error-code") == "job_failed"
    assert reason in playground.text("#error-message")


def test_stop_abandons_a_job_and_the_gateway_stops_polling(
    page: Page, gateway: str, mpx: FakeMasterpieceX
) -> None:
    mpx.script(MPXJob(duration_s=30))
    playground = Playground(page, gateway).open()
    playground.pick("mpx-vision")
    playground.upload("square.png", image_bytes(20, 20))
    playground.ask("What is in this image?", stream=True)
    page.locator("#status[data-state=waiting]").wait_for()
    deadline = time.monotonic() + 10
    while not mpx.polls and time.monotonic() < deadline:  # the job is being polled
        time.sleep(0.02)

    page.get_by_role("button", name="Stop").click()

    page.locator("#status", has_text="Stopped.").wait_for()
    assert page.get_by_role("button", name="Send").is_enabled()
    time.sleep(1.0)  # the gateway notices the disconnect and cancels the polling
    polls = len(mpx.polls)
    time.sleep(0.5)
    assert len(mpx.polls) == polls
    assert polls > 0


def test_inspect_shows_what_the_gateway_made_of_each_image(
    page: Page, gateway: str, screenshots: Path
) -> None:
    (w1, h1), (w2, h2) = random_size(), random_size()
    png = image_bytes(w1, h1, "orange")
    bmp = image_bytes(w2, h2, "navy", image_format="BMP")
    playground = Playground(page, gateway).open()
    playground.pick("inspect")
    playground.upload("orange.png", png)
    playground.upload("navy.bmp", bmp, "image/bmp")

    playground.ask("What do you see?", stream=False, inspect=True)
    playground.wait_until_done()
    first, second = playground.inspection(1), playground.inspection(2)

    assert first["type"] == "image/png"
    assert first["size"] == f"{w1}×{h1} px, {len(png):,} bytes"
    assert first["conversion"] == "no conversion"
    assert first["source"] == "data URI"
    assert second["type"] == "image/png"
    assert second["size"].startswith(f"{w2}×{h2} px, ")
    assert second["conversion"] == "image/bmp → image/png"
    answer = gateway_answer(
        gateway,
        chat_body(
            "inspect", "What do you see?", data_uri(png, "image/png"), data_uri(bmp, "image/bmp")
        ),
    )
    converted_bytes = re.findall(r"(\d+) bytes", answer)[1]
    assert second["size"] == f"{w2}×{h2} px, {int(converted_bytes):,} bytes"
    assert re.match(r"^\d+\.\d\d ms$", playground.text("#overhead"))
    assert playground.text("#ttft") == "– (not streamed)"
    playground.screenshot(screenshots / "07-inspect-thumbnails.png")


def test_an_image_url_is_previewed_and_fetched_by_the_gateway(
    page: Page, gateway: str, image_host: ImageHost
) -> None:
    width, height = random_size()
    png = image_bytes(width, height, "olive")
    url = image_host.put("web.png", png)
    playground = Playground(page, gateway).open()
    playground.pick("inspect")

    page.get_by_label("Image URL").fill(url)
    page.get_by_role("button", name="Add URL").click()
    thumbnail = page.get_by_role("img", name=url)
    thumbnail.wait_for()
    page.wait_for_load_state("networkidle")
    assert thumbnail.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [width, height]
    playground.ask("And this one?", inspect=True)
    playground.wait_until_done()
    facts = playground.inspection(1)

    assert facts["size"] == f"{width}×{height} px, {len(png):,} bytes"
    assert facts["source"] == f"URL {url}, fetched"
    assert f"{width}×{height}, {len(png)} bytes" in playground.answer.inner_text()
    assert image_host.fetched.count("web.png") >= 2  # the page's preview, and the gateway


def test_the_code_snippets_repeat_the_request_just_made(
    page: Page, gateway: str, tmp_path: Path
) -> None:
    png = image_bytes(*random_size())
    prompt = f'Count the pixels, it\'s {random.randint(1, 99)}$ "worth" `it`\\?'
    playground = Playground(page, gateway).open()
    playground.pick("inspect")
    playground.upload("my image.png", png)
    playground.ask(prompt, stream=True)
    playground.wait_until_done()
    answer = playground.answer.inner_text()
    curl = playground.text("#curl-snippet")
    python = playground.text("#python-snippet")

    for snippet in (curl, python):
        assert '"inspect"' in snippet
        assert "my image.png" in snippet
        assert "Authorization" not in snippet  # this gateway needs no key
    (tmp_path / "my image.png").write_bytes(png)
    ran_python = run([sys.executable, "-c", python], tmp_path)
    assert ran_python.strip() == answer
    ran_curl = run(["bash", "-c", curl], tmp_path)
    assert streamed_text(ran_curl) == answer


def streamed_text(body: str) -> str:
    """The content deltas of a raw event stream, joined."""
    events = [line[len("data: ") :] for line in body.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    return "".join(choice["delta"].get("content") or "" for c in chunks for choice in c["choices"])


def run(command: list[str], cwd: Path) -> str:
    """Run a snippet as a user would, from the folder holding its image, with no proxy."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout
