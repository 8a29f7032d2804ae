"""Requests and checks shared by the Responses API tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import httpx
from openai.types.responses import ResponseInputParam

from tests.e2e.deployments import png_data_uri

QUESTION = "What is in this image?"
RED_SQUARE = png_data_uri(12, 8)

# OpenAI's order of a streamed text answer, after which the response completes.
TEXT_EVENTS_HEAD = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
TEXT_EVENTS_TAIL = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


def ask(text: str = QUESTION, *image_urls: str, detail: str = "auto") -> ResponseInputParam:
    """One user message item: an input_text part, then an input_image part per URL."""
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
    parts += [{"type": "input_image", "image_url": url, "detail": detail} for url in image_urls]
    return cast("ResponseInputParam", [{"role": "user", "content": parts}])


def text_event_order(types: Sequence[str]) -> list[str]:
    """The event types with the run of text deltas folded into one."""
    folded: list[str] = []
    for kind in types:
        if kind == "response.output_text.delta" and folded and folded[-1] == kind:
            continue
        folded.append(kind)
    return folded


def raw_events(response: httpx.Response) -> tuple[list[dict[str, Any]], list[str]]:
    """The events of a raw Responses SSE body (each `event:` line checked against its
    data's `type`), and the comment lines (keepalives) in it."""
    events: list[dict[str, Any]] = []
    comments: list[str] = []
    for block in response.text.split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        if lines[0].startswith(":"):
            comments.extend(lines)
            continue
        assert len(lines) == 2, block
        assert lines[0].startswith("event: "), block
        assert lines[1].startswith("data: "), block
        event = json.loads(lines[1].removeprefix("data: "))
        assert event["type"] == lines[0].removeprefix("event: ")
        events.append(event)
    return events, comments


def assert_sequence_increases(events: list[Any]) -> None:
    numbers = [e["sequence_number"] if isinstance(e, dict) else e.sequence_number for e in events]
    assert numbers == sorted(set(numbers)), numbers
