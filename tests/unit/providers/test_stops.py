"""Stop sequences cut by the gateway: nothing past a stop leaves, however the text is split."""

from __future__ import annotations

import pytest

from app.providers.stops import StopFilter, apply_stops


def feed_all(stops: list[str], pieces: list[str]) -> tuple[list[str], str, bool]:
    stop_filter = StopFilter(stops)
    sent = [stop_filter.feed(piece) for piece in pieces]
    return sent, stop_filter.flush(), stop_filter.stopped


@pytest.mark.parametrize(
    ("stops", "text", "expected"),
    [
        (["END"], "one END two END", ("one ", True)),
        (["END"], "no stop here", ("no stop here", False)),
        (["b", "ab"], "xab", ("x", True)),
        (["", "END"], "an END", ("an ", True)),
        ([], "anything", ("anything", False)),
        (["</s>"], "done.</s>", ("done.", True)),
    ],
)
def test_apply_stops_cuts_at_the_earliest_stop(
    stops: list[str], text: str, expected: tuple[str, bool]
) -> None:
    assert apply_stops(text, stops) == expected


def test_a_stop_split_across_pieces_is_held_back_then_cut() -> None:
    sent, rest, stopped = feed_all(["STOP"], ["Hello", " wor", "ld ST", "OP", " after"])

    assert "".join(sent) + rest == "Hello world "
    assert sent[2] == "ld "
    assert stopped


def test_held_back_text_that_was_no_stop_is_sent_with_the_next_piece() -> None:
    sent, rest, stopped = feed_all(["STOP"], ["a ST", "ILL here"])

    assert sent == ["a ", "STILL here"]
    assert (rest, stopped) == ("", False)


def test_held_back_text_is_flushed_at_the_end() -> None:
    sent, rest, stopped = feed_all(["</s>"], ["done", "</"])

    assert sent == ["done", ""]
    assert (rest, stopped) == ("</", False)


def test_overlapping_starts_still_find_the_stop() -> None:
    sent, rest, stopped = feed_all(["aab"], ["xaa", "ab", "tail"])

    assert "".join(sent) + rest == "xa"
    assert stopped


def test_one_character_pieces() -> None:
    text = "say <stop> now"

    sent, rest, stopped = feed_all(["<stop>"], list(text))

    assert "".join(sent) + rest == "say "
    assert stopped


def test_nothing_leaves_after_a_stop() -> None:
    stop_filter = StopFilter(["END"])

    assert stop_filter.feed("a END b") == "a "
    assert stop_filter.feed("more") == ""
    assert stop_filter.flush() == ""
