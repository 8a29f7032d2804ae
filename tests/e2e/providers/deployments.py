"""Model entries for the provider fakes and the keys they hold, the messages and images tests
send through them, and the SSE bodies read back."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam
from PIL import Image

from tests.e2e.providers.fakes import FakeMasterpieceX, FakePredictionGuard, FakeTakeoff, FakeVLMRun

MPX_KEY = "mpx-e2e-upstream-7d1c40a9be"
VLMRUN_KEY = "vlmrun-e2e-upstream-2e95f03c7a"
PG_KEY = "pg-e2e-upstream-5e0c71b2d9"
PG_MODEL = "llava-1.5-7b-hf"
POLL_INTERVAL_S = 0.05
QUESTION = "What is in this image?"


def _entry(name: str, provider: str, base_url: str, **fields: Any) -> dict[str, Any]:
    """A model entry with no retries, so that each upstream failure shows at once."""
    return {"name": name, "provider": provider, "base_url": base_url, "retries": 0, **fields}


def _job_entry(name: str, provider: str, base_url: str, key: str, **fields: Any) -> dict[str, Any]:
    """A job-API model polled every 50 ms."""
    job = {"api_key": key, "poll_interval_s": POLL_INTERVAL_S, "timeout_s": 10}
    return _entry(name, provider, base_url, **{**job, **fields})


def takeoff_entry(name: str, fake: FakeTakeoff, **fields: Any) -> dict[str, Any]:
    return _entry(name, "takeoff", fake.url, **fields)


def pg_entry(name: str, fake: FakePredictionGuard, **fields: Any) -> dict[str, Any]:
    pg = {"api_key": PG_KEY, "upstream_model": PG_MODEL}
    return _entry(name, "predictionguard", fake.url, **{**pg, **fields})


def mpx_entry(fake: FakeMasterpieceX, name: str = "mpx-vision", **fields: Any) -> dict[str, Any]:
    return _job_entry(name, "masterpiecex", fake.base_url, MPX_KEY, **fields)


def vlmrun_entry(fake: FakeVLMRun, name: str, **fields: Any) -> dict[str, Any]:
    return _job_entry(name, "vlmrun", fake.base_url, VLMRUN_KEY, **fields)


def ask(text: str = QUESTION, *image_urls: str) -> list[ChatCompletionMessageParam]:
    """One user turn: a text part, then one image part per URL."""
    parts: list[ChatCompletionContentPartParam] = [{"type": "text", "text": text}]
    parts.extend({"type": "image_url", "image_url": {"url": url}} for url in image_urls)
    return [{"role": "user", "content": parts}]


def image_bytes(fmt: str, width: int = 24, height: int = 16, color: str = "red") -> bytes:
    """A real image in Pillow format `fmt` (PNG, JPEG, GIF, WEBP)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    """`data` as a data URI that declares `mime`, truthfully or not."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_size(data: bytes) -> tuple[str | None, tuple[int, int]]:
    """What Pillow reads the bytes as, and their size."""
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


def text_of(chunks: list[Any], index: int = 0) -> str:
    """The text streamed for choice `index` across SDK chunks."""
    return "".join(
        choice.delta.content or ""
        for chunk in chunks
        for choice in chunk.choices
        if choice.index == index
    )


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
