"""Driving the playground page as a user would: through its labels, buttons and file picker."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from PIL import Image

if TYPE_CHECKING:
    from playwright.sync_api import FilePayload, Locator, Page

WAIT_MS = 10_000


def image_bytes(width: int, height: int, color: str = "teal", image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=image_format)
    return buffer.getvalue()


def file_payload(name: str, data: bytes, mime: str = "image/png") -> FilePayload:
    """A file as the browser's file picker hands it over."""
    return {"name": name, "mimeType": mime, "buffer": data}


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


class Playground:
    """The page at `{gateway}/playground`, opened in `page`."""

    def __init__(self, page: Page, gateway: str) -> None:
        self.page = page
        self.gateway = gateway

    def open(self) -> Playground:
        self.page.goto(f"{self.gateway}/playground")
        return self

    def wait_for_model(self, model: str) -> None:
        option = self.model_picker.locator(f"option[value='{model}']")
        option.wait_for(state="attached", timeout=WAIT_MS)

    @property
    def model_picker(self) -> Locator:
        return self.page.get_by_label("Model", exact=True)

    def pick(self, model: str) -> None:
        self.wait_for_model(model)
        self.model_picker.select_option(model)

    def type_model(self, model: str) -> None:
        self.model_picker.select_option(label="Other model id…")
        self.page.get_by_label("Model id", exact=True).fill(model)

    def upload(self, name: str, data: bytes, mime: str = "image/png") -> None:
        picker = self.page.get_by_label("Choose images")
        picker.set_input_files(files=[file_payload(name, data, mime)])
        self.page.get_by_role("img", name=name).wait_for(timeout=WAIT_MS)

    def use_api(self, label: str) -> None:
        """Pick the API the page sends to: "Chat Completions" or "Responses"."""
        self.page.get_by_label("API", exact=True).select_option(label=label)

    def ask(self, prompt: str, *, stream: bool = True, inspect: bool = False) -> None:
        self.page.get_by_label("Prompt").fill(prompt)
        self.page.get_by_label("Stream").set_checked(stream)
        self.page.get_by_label("Inspect images").set_checked(inspect)
        self.page.get_by_role("button", name="Send").click()

    @property
    def status(self) -> Locator:
        return self.page.locator("#status")

    @property
    def answer(self) -> Locator:
        return self.page.get_by_label("Answer text")

    def wait_until_done(self) -> None:
        self.page.locator("#status[data-state=done]").wait_for(timeout=WAIT_MS)

    def wait_for_error(self) -> None:
        self.page.get_by_role("alert").wait_for(timeout=WAIT_MS)

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text().strip()

    def inspection(self, index: int) -> dict[str, str]:
        """The inspect result shown next to image `index` (1-based), term by term."""
        result = self.page.locator(f"#inspect-{index}")
        result.locator("dl").wait_for(timeout=WAIT_MS)
        terms = result.locator("dt").all_inner_texts()
        values = result.locator("dd").all_inner_texts()
        return dict(zip(terms, values, strict=True))

    def screenshot(self, path: Path) -> None:
        self.page.screenshot(path=path, full_page=True)


def gateway_answer(gateway: str, body: dict[str, Any]) -> str:
    """What the gateway itself answers to `body`, not streamed: the page must show the same."""
    response = httpx.post(f"{gateway}/v1/chat/completions", json=body, timeout=10)
    response.raise_for_status()
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


def chat_body(model: str, prompt: str, *images: str) -> dict[str, Any]:
    """The body the page sends for `prompt` and image URLs at the default detail."""
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    content += [{"type": "image_url", "image_url": {"url": u, "detail": "auto"}} for u in images]
    return {"model": model, "messages": [{"role": "user", "content": content}]}
