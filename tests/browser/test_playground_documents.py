"""PDFs in the playground, in a real browser: picked like images, their pages shown as the
gateway read them, sent as `file` parts (or `input_file` to the Responses API), and described
by `inspect` next to their pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.playground import WAIT_MS, Playground, file_payload
from tests.documents import REPORT_TEXTS, encrypted_pdf, report_pdf

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request

pytestmark = pytest.mark.e2e


def pick_pdf(playground: Playground, name: str, data: bytes) -> None:
    picker = playground.page.get_by_label("Choose images")
    picker.set_input_files(files=[file_payload(name, data, "application/pdf")])


def test_a_pdf_shows_its_pages_and_inspect_describes_it(
    page: Page, gateway: str, screenshots: Path
) -> None:
    playground = Playground(page, gateway).open()
    playground.pick("inspect")
    pick_pdf(playground, "report.pdf", report_pdf().data)
    pages = page.get_by_role("group", name="Document 1: report.pdf").get_by_role("img")
    pages.nth(2).wait_for(timeout=WAIT_MS)
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))

    playground.ask("What is the total due?", stream=False, inspect=True)
    playground.wait_until_done()
    facts = playground.inspection(1)

    assert pages.count() == 3
    assert [pages.nth(n).get_attribute("alt") for n in range(3)] == [
        f"report.pdf, page {n}" for n in (1, 2, 3)
    ]
    assert page.get_by_text("1. report.pdf (3 pages)").is_visible()
    assert "1 document(s) of 3 page(s)" in playground.answer.inner_text()
    assert facts["pages"] == "3"
    texts = ", ".join(str(len(text or "")) for text in REPORT_TEXTS)
    assert facts["text"] == f"{texts} characters"
    chat = next(r for r in sent if r.url.endswith("/v1/chat/completions"))
    body = json.loads(chat.post_data or "{}")
    part = body["messages"][0]["content"][1]
    assert part == {
        "type": "file",
        "file": {"filename": "report.pdf", "file_data": report_pdf().data_uri},
    }
    playground.screenshot(screenshots / "10-document-pages.png")


def test_a_pdf_goes_to_the_responses_api_as_an_input_file(page: Page, gateway: str) -> None:
    playground = Playground(page, gateway).open()
    playground.pick("inspect")
    playground.use_api("Responses")
    pick_pdf(playground, "report.pdf", report_pdf().data)
    page.get_by_role("group", name="Document 1: report.pdf").get_by_role("img").nth(2).wait_for(
        timeout=WAIT_MS
    )
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))

    playground.ask("What is the total due?", stream=True)
    playground.wait_until_done()

    assert "1 document(s) of 3 page(s)" in playground.answer.inner_text()
    response = next(r for r in sent if r.url.endswith("/v1/responses"))
    part = json.loads(response.post_data or "{}")["input"][0]["content"][1]
    assert part == {
        "type": "input_file",
        "filename": "report.pdf",
        "file_data": report_pdf().data_uri,
    }


def test_a_pdf_the_gateway_cannot_read_is_left_out_saying_why(page: Page, gateway: str) -> None:
    playground = Playground(page, gateway).open()
    playground.pick("inspect")

    pick_pdf(playground, "secret.pdf", encrypted_pdf().data)
    note = page.locator("#image-note")
    note.filter(has_text="encrypted").wait_for(timeout=WAIT_MS)

    assert note.inner_text().startswith("secret.pdf: ")
    assert page.locator("#images li").count() == 0
