"""The gateway's own event-stream decoder reads every stream as httpx-sse's `EventSource`
does, however it is written and however the network cuts it."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import anyio
import httpx
from httpx_sse import EventSource
from hypothesis import given, settings
from hypothesis import strategies as st

from app.wire.sse import iter_sse_data
from app.wire.sse_decoder import EventDecoder, LineDecoder

_FIELDS = st.sampled_from(
    ["data: ", "data:", "data:  ", "data", ": ", ":", "event: ", "id: ", "retry: ", "dat: ", ""]
)
_VALUES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=8
) | st.sampled_from(["[DONE]", '{"a": 1}', "x\x00y", "é€😀"])
_ENDINGS = st.sampled_from(["\n", "\r", "\r\n"])
# Half of the lines blank, so that events end often.
_BLANK = st.tuples(st.just(""), st.just(""), _ENDINGS)
_LINES = st.lists(_BLANK | st.tuples(_FIELDS, _VALUES, _ENDINGS), max_size=24)


def stream_text(lines: list[tuple[str, str, str]], last_ending: bool) -> str:
    text = "".join(field + value + ending for field, value, ending in lines)
    if lines and not last_ending:
        text = text[: -len(lines[-1][2])]
    return text


def cut(body: bytes, cuts: list[int]) -> list[bytes]:
    """`body` in pieces, cut where `cuts` say (in UTF-8 sequences too, as a network may)."""
    points = sorted({0, len(body), *(at % (len(body) + 1) for at in cuts)})
    return [body[start:end] for start, end in itertools.pairwise(points)]


def event_stream(pieces: list[bytes]) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


async def read_by_event_source(pieces: list[bytes]) -> list[str]:
    """httpx-sse's reading: each event's data, those with none left out, up to `[DONE]`."""
    found = []
    async for event in EventSource(event_stream(pieces)).aiter_sse():
        if event.data == "[DONE]":
            break
        if event.data:
            found.append(event.data)
    return found


async def read_by_the_gateway(pieces: list[bytes]) -> list[str]:
    return [data async for data in iter_sse_data(event_stream(pieces))]


@settings(max_examples=300, deadline=None)
@given(lines=_LINES, last_ending=st.booleans(), cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_the_gateway_reads_what_httpx_sse_reads(
    lines: list[tuple[str, str, str]], last_ending: bool, cuts: list[int]
) -> None:
    pieces = cut(stream_text(lines, last_ending).encode(), cuts)

    expected = anyio.run(read_by_event_source, pieces)

    assert anyio.run(read_by_the_gateway, pieces) == expected


def test_a_cr_then_lf_in_the_next_piece_is_one_line_ending() -> None:
    lines, events = LineDecoder(), EventDecoder()

    assert lines.decode("data: a\r") == []  # the CR may be half of a CRLF: it waits
    assert lines.decode("\ndata: b\r\n") == ["data: a", "data: b"]
    assert lines.decode("\r\n") == [""]
    assert [events.decode(line) for line in ["data: a", "data: b", ""]] == [None, None, "a\nb"]


def test_the_last_line_without_an_ending_comes_at_the_flush() -> None:
    lines = LineDecoder()

    assert lines.decode("data: a\ndata: b") == ["data: a"]
    assert lines.decode("c") == []
    assert lines.flush() == ["data: bc"]
    assert lines.flush() == []
