"""Counting a stream's SSE events as a client reads them, in each wire format the bench meets."""

from __future__ import annotations

import re
import time
from typing import Literal, Protocol

# chat: OpenAI chat chunks ending with `[DONE]`; raw: Takeoff's raw-text events, no end marker;
# responses: the Responses API's named events, ending with `response.completed`/`.incomplete`.
Framing = Literal["chat", "raw", "responses"]

_CONTENT = re.compile(rb'"content"\s*:\s*"[^"]')
_DONE = b"data: [DONE]"
_ERROR = re.compile(rb'^data:\s*\{"error"')
_NAMED = re.compile(rb"^event:[ \t]*([^\n]*)\n(?:[^\n]*\n)*?data:", re.MULTILINE)
_TEXT_DELTA = b"response.output_text.delta"
_FINISHED = frozenset({b"response.completed", b"response.incomplete"})
_FAILED = frozenset({b"error", b"response.failed"})


class Tally(Protocol):
    """What a stream's events are counted into (the client's `Exchange`)."""

    first_token: float | None
    events: int
    tokens: int
    done: bool
    error: str | None


def count(framing: Framing, tally: Tally, events: list[bytes]) -> None:
    """Count whole events (the blocks between blank lines, `\\r\\n` already made `\\n`)."""
    if framing == "raw":
        _count_raw(tally, events)
    elif framing == "responses":
        _count_responses(tally, events)
    else:
        _count_chat(tally, events)


def missing_end(framing: Framing) -> str | None:
    """What a stream that ended without its end marker is reported as; None: it has none."""
    if framing == "chat":
        return "the stream ended without [DONE]"
    if framing == "responses":
        return "the stream ended without response.completed or response.incomplete"
    return None


def _token(tally: Tally) -> None:
    tally.tokens += 1
    if tally.first_token is None:
        tally.first_token = time.perf_counter()


def _count_chat(tally: Tally, events: list[bytes]) -> None:
    for event in events:
        if not event.startswith(b"data:"):
            continue  # comments such as `: keepalive`
        if event.startswith(_DONE):
            tally.done = True
            continue
        tally.events += 1
        if _CONTENT.search(event):
            _token(tally)
        elif _ERROR.match(event):
            tally.error = event[:300].decode("utf-8", "replace")


def _count_raw(tally: Tally, events: list[bytes]) -> None:
    for event in events:
        if event.startswith(b"data:"):
            tally.events += 1
            _token(tally)


def _count_responses(tally: Tally, events: list[bytes]) -> None:
    """Every named event with data counts; text deltas are the tokens. The first error ends
    the count's verdict: `error` comes before `response.failed`, and says more."""
    for event in events:
        named = _NAMED.match(event)
        if named is None:
            continue  # comments such as `: keepalive`
        kind = named.group(1).strip()
        tally.events += 1
        if kind == _TEXT_DELTA:
            _token(tally)
        elif kind in _FINISHED:
            tally.done = True
        elif kind in _FAILED and tally.error is None:
            tally.error = event[:300].decode("utf-8", "replace")
