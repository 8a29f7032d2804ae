"""The kinds of request the instruction counter knows by name."""

from __future__ import annotations

import pytest

from bench.instructions import _scenario
from bench.scenarios import RESPONSES_SMALL, RESPONSES_STREAM_CHAT


def test_scenarios_and_the_responses_halves_are_kinds() -> None:
    assert _scenario("small").key == "small"
    assert _scenario("responses-small") is RESPONSES_SMALL
    assert _scenario("responses-stream-chat") is RESPONSES_STREAM_CHAT


def test_a_special_scenario_is_not_a_kind() -> None:
    with pytest.raises(SystemExit, match="no scenario 'responses'"):
        _scenario("responses")
