"""Model entries for the translator fakes, the messages and images sent through them, and SSE
bodies read back."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam
from PIL import Image

from tests.e2e.translators.fakes import FakePredictionGuard, FakeTakeoff

PG_KEY = "pg-e2e-upstream-5e0c71b2d9"
PG_MODEL = "llava-1.5-7b-hf"
QUESTION = "What is in this image?"


def takeoff_entry(name: str, fake: FakeTakeoff, **fields: Any) -> dict[str, Any]:
    """A Takeoff route to the fake; no retries, so that each upstream failure shows at once."""
    return {"name": name, "provider": "takeoff", "base_url": fake.url, "retries": 0, **fields}


def pg_entry(name: str, fake: FakePredictionGuard, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "predictionguard",
        "base_url": fake.url,
        "api_key": PG_KEY,
        "upstream_model": PG_MODEL,
        "retries": 0,
        **fields,
    }


def ask(text: str = QUESTION, *image_urls: str) -> list[ChatCompletionMessageParam]:
    """One user turn: the text, then each image."""
    parts: list[ChatCompletionContentPartParam] = [{"type": "text", "text": text}]
    parts.extend({"type": "image_url", "image_url": {"url": url}} for url in image_urls)
    return [{"role": "user", "content": parts}]


def image_bytes(fmt: str, width: int = 24, height: int = 16, color: str = "red") -> bytes:
    """A real image in Pillow format `fmt` (PNG, JPEG, GIF, WEBP)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_size(data: bytes) -> tuple[str | None, tuple[int, int]]:
    """What Pillow reads the bytes as, and their size."""
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


def sse_data(body: str) -> list[str]:
    """The data of each event in one of the gateway's SSE bodies, keepalive comments skipped."""
    assert body.endswith("\n\n"), body[-80:]
    events = [event for event in body.split("\n\n")[:-1] if not event.startswith(":")]
    for event in events:
        assert event.startswith("data: "), event
        assert "\n" not in event, event
    return [event.removeprefix("data: ") for event in events]


def chunks_of(body: str) -> tuple[list[dict[str, Any]], bool]:
    """The JSON events of an SSE body, and whether it ended with `[DONE]`."""
    events = sse_data(body)
    done = bool(events) and events[-1] == "[DONE]"
    return [json.loads(event) for event in (events[:-1] if done else events)], done
