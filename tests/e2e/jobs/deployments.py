"""Model entries for the job-API fakes, their keys, and the images and messages tests send."""

from __future__ import annotations

import base64
from typing import Any

from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam

from tests.e2e.jobs.fakes import FakeMasterpieceX, FakeVLMRun

MPX_KEY = "mpx-e2e-upstream-7d1c40a9be"
VLMRUN_KEY = "vlmrun-e2e-upstream-2e95f03c7a"
POLL_INTERVAL_S = 0.05


def mpx_entry(fake: FakeMasterpieceX, name: str = "mpx-vision", **fields: Any) -> dict[str, Any]:
    """A Masterpiece X model polled every 50 ms, with no retries so that failures show at once."""
    return {
        "name": name,
        "provider": "masterpiecex",
        "base_url": fake.base_url,
        "api_key": MPX_KEY,
        "poll_interval_s": POLL_INTERVAL_S,
        "timeout_s": 10,
        "retries": 0,
        **fields,
    }


def vlmrun_entry(fake: FakeVLMRun, name: str, **fields: Any) -> dict[str, Any]:
    """A VLM Run model polled every 50 ms, with no retries."""
    return {
        "name": name,
        "provider": "vlmrun",
        "base_url": fake.base_url,
        "api_key": VLMRUN_KEY,
        "poll_interval_s": POLL_INTERVAL_S,
        "timeout_s": 10,
        "retries": 0,
        **fields,
    }


def data_uri(data: bytes, mime: str = "image/png") -> str:
    """`data` as a data URI that declares `mime`, truthfully or not."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def ask(text: str, *image_urls: str) -> list[ChatCompletionMessageParam]:
    """One user turn: a text part, then one image part per URL."""
    content: list[ChatCompletionContentPartParam] = [{"type": "text", "text": text}]
    content += [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    return [{"role": "user", "content": content}]
