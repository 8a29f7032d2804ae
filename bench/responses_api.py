"""The `responses` scenario: the gateway's Responses API next to its chat completions."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable

from bench.outcome import Check, SpecialResult, fmt, row
from bench.procs import Service
from bench.report import figures
from bench.runner import Measurement, ScenarioResult, Settings, measure, run_through_gateway
from bench.scenarios import (
    RESPONSES_SMALL,
    RESPONSES_SMALL_CHAT,
    RESPONSES_STREAM,
    RESPONSES_STREAM_CHAT,
    Scenario,
    Special,
)
from bench.stats import ratio

MAX_CPU_PER_DELTA_RATIO = 1.5  # Responses CPU per text delta over chat's per content chunk
MIN_RATE_RATIO = 0.9  # Responses non-streamed requests/s over chat's
# Each pair is measured this many times, the duration shared between the rounds, chat first
# and Responses first in turn. Whichever API runs first after the direct measurement fares
# differently on a shared machine, so each figure is the geometric mean of all rounds (as many
# of each order), and the round nearest to it is the one whose tables are shown.
ROUNDS = 4
MIN_ROUND_S = 3.0


async def _pair(
    chat: Scenario,
    responses: Scenario,
    settings: Settings,
    mock: Service,
    responses_first: bool = False,
) -> tuple[ScenarioResult, ScenarioResult]:
    """One direct measurement (the mock gets the same chat request either way), then each API
    through a fresh gateway, back to back so that both see the same machine."""
    direct = await measure(chat, settings, mock, None)
    if responses_first:
        through_responses = await run_through_gateway(responses, settings, mock, direct)
        through_chat = await run_through_gateway(chat, settings, mock, direct)
    else:
        through_chat = await run_through_gateway(chat, settings, mock, direct)
        through_responses = await run_through_gateway(responses, settings, mock, direct)
    return through_chat, through_responses


def _per_token_us(measurement: Measurement) -> float | None:
    """Gateway CPU per content event: chat's content chunks, or Responses' text deltas."""
    cpu = measurement.gateway_cpu_s
    return ratio(cpu * 1e6, measurement.tokens) if cpu else None


def _stream_figures(chat: ScenarioResult, responses: ScenarioResult) -> dict[str, float | None]:
    chat_events_us = figures(chat).get("gateway_cpu_us_per_chunk")
    responses_events_us = figures(responses).get("gateway_cpu_us_per_chunk")
    chat_token_us, delta_us = _per_token_us(chat.gateway), _per_token_us(responses.gateway)
    return {
        "chat_gateway_streams_per_s": chat.gateway.rate,
        "responses_gateway_streams_per_s": responses.gateway.rate,
        "streams_per_s_responses_over_chat": ratio(responses.gateway.rate, chat.gateway.rate),
        "chat_events_per_stream": ratio(chat.gateway.events, chat.gateway.ok),
        "responses_events_per_stream": ratio(responses.gateway.events, responses.gateway.ok),
        "chat_gateway_cpu_us_per_content_chunk": chat_token_us,
        "responses_gateway_cpu_us_per_delta": delta_us,
        "cpu_per_delta_over_chat_per_content_chunk": ratio(delta_us, chat_token_us),
        "chat_gateway_cpu_us_per_chunk": chat_events_us,
        "responses_gateway_cpu_us_per_event": responses_events_us,
        "cpu_per_event_over_chat_per_chunk": ratio(responses_events_us, chat_events_us),
        "chat_gateway_cpu_ms_per_stream": figures(chat).get("gateway_cpu_ms_per_request"),
        "responses_gateway_cpu_ms_per_stream": figures(responses).get("gateway_cpu_ms_per_request"),
    }


def _small_figures(chat: ScenarioResult, responses: ScenarioResult) -> dict[str, float | None]:
    return {
        "chat_gateway_requests_per_s": chat.gateway.rate,
        "responses_gateway_requests_per_s": responses.gateway.rate,
        "requests_per_s_responses_over_chat": ratio(responses.gateway.rate, chat.gateway.rate),
        "chat_gateway_cpu_ms_per_request": figures(chat).get("gateway_cpu_ms_per_request"),
        "responses_gateway_cpu_ms_per_request": figures(responses).get(
            "gateway_cpu_ms_per_request"
        ),
    }


def _pair_row(label: str, found: dict[str, float | None], keys: str, digits: int) -> str:
    """`label`: chat's figure vs Responses', and their ratio; `keys` is `chat,responses,ratio`."""
    chat, responses, quotient = (found[key] for key in keys.split(","))
    return row(
        label, f"{fmt(responses, digits)} vs {fmt(chat, digits)}", f"ratio {fmt(quotient, 3)}"
    )


def _lines(found: dict[str, float | None]) -> list[str]:
    return [
        "    through the gateway: Responses API vs chat completions, concurrency "
        f"{RESPONSES_SMALL.concurrency}",
        _pair_row(
            "small: requests/s",
            found,
            "chat_gateway_requests_per_s,responses_gateway_requests_per_s,"
            "requests_per_s_responses_over_chat",
            1,
        ),
        row(
            "small: CPU ms/request",
            f"{fmt(found['responses_gateway_cpu_ms_per_request'], 3)} vs "
            f"{fmt(found['chat_gateway_cpu_ms_per_request'], 3)}",
        ),
        _pair_row(
            "stream: streams/s",
            found,
            "chat_gateway_streams_per_s,responses_gateway_streams_per_s,"
            "streams_per_s_responses_over_chat",
            1,
        ),
        row(
            "stream: events per stream",
            f"{fmt(found['responses_events_per_stream'], 1)} vs "
            f"{fmt(found['chat_events_per_stream'], 1)}",
        ),
        _pair_row(
            "stream: CPU us/content event",
            found,
            "chat_gateway_cpu_us_per_content_chunk,responses_gateway_cpu_us_per_delta,"
            "cpu_per_delta_over_chat_per_content_chunk",
            1,
        ),
        _pair_row(
            "stream: CPU us/event",
            found,
            "chat_gateway_cpu_us_per_chunk,responses_gateway_cpu_us_per_event,"
            "cpu_per_event_over_chat_per_chunk",
            1,
        ),
        row(
            "stream: CPU ms/stream",
            f"{fmt(found['responses_gateway_cpu_ms_per_stream'], 3)} vs "
            f"{fmt(found['chat_gateway_cpu_ms_per_stream'], 3)}",
        ),
        "    (Responses first, then chat. Content events: Responses' text deltas, chat's "
        "content chunks;",
        "    events: every event a client reads, chat's `data:` events but [DONE])",
    ]


Pair = tuple[ScenarioResult, ScenarioResult]


async def _rounds(
    chat: Scenario,
    responses: Scenario,
    settings: Settings,
    mock: Service,
    figure: Callable[[ScenarioResult, ScenarioResult], float | None],
) -> tuple[Pair, list[float]]:
    """`ROUNDS` pairs: the one whose `figure` is nearest the geometric mean of all rounds',
    and every round's figure, in the order measured."""
    duration = max(MIN_ROUND_S, settings.duration_s / ROUNDS)
    short = dataclasses.replace(settings, duration_s=duration)
    pairs = [
        await _pair(chat, responses, short, mock, responses_first=index % 2 == 1)
        for index in range(ROUNDS)
    ]
    scores = [figure(*pair) or 0.0 for pair in pairs]
    mean = statistics.geometric_mean(scores) if all(scores) else 0.0
    nearest = min(range(ROUNDS), key=lambda index: abs(scores[index] - mean))
    return pairs[nearest], scores


def _rate_ratio(chat: ScenarioResult, responses: ScenarioResult) -> float | None:
    return ratio(responses.gateway.rate, chat.gateway.rate)


def _delta_ratio(chat: ScenarioResult, responses: ScenarioResult) -> float | None:
    return ratio(_per_token_us(responses.gateway), _per_token_us(chat.gateway))


async def run_responses(scenario: Special, settings: Settings, mock: Service) -> SpecialResult:
    """Small non-streamed requests, then streams of 20 chunks, each through the gateway's chat
    completions and its Responses API; the Responses API must cost about what chat does."""
    (small_chat, small), rates = await _rounds(
        RESPONSES_SMALL_CHAT, RESPONSES_SMALL, settings, mock, _rate_ratio
    )
    (stream_chat, stream), deltas = await _rounds(
        RESPONSES_STREAM_CHAT, RESPONSES_STREAM, settings, mock, _delta_ratio
    )
    found = {**_small_figures(small_chat, small), **_stream_figures(stream_chat, stream)}
    # The checked figures: every round counts, as many with each API first.
    found["requests_per_s_responses_over_chat"] = statistics.geometric_mean(rates)
    found["cpu_per_delta_over_chat_per_content_chunk"] = statistics.geometric_mean(deltas)
    incomplete = stream_chat.gateway.incomplete + stream.gateway.incomplete
    checks = [
        Check.of(
            "Responses req/s over chat's",
            f">= {MIN_RATE_RATIO:g}",
            found["requests_per_s_responses_over_chat"],
            lambda v: v >= MIN_RATE_RATIO,
        ),
        Check.of(
            "CPU/delta over chat CPU/token",
            f"<= {MAX_CPU_PER_DELTA_RATIO:g}",
            found["cpu_per_delta_over_chat_per_content_chunk"],
            lambda v: v <= MAX_CPU_PER_DELTA_RATIO,
        ),
        Check.of("incomplete streams (both)", "== 0", incomplete, lambda v: v == 0),
    ]
    parts = [small_chat, small, stream_chat, stream]
    rounds = (
        "    rounds (chat first, then Responses first, in turn; the ratios above are their "
        "geometric means, the tables the nearest round's): req/s ratios "
        f"{', '.join(fmt(r, 3) for r in rates)}; CPU/delta ratios "
        f"{', '.join(fmt(d, 3) for d in deltas)}"
    )
    lines = [*_lines(found), rounds]
    return SpecialResult(scenario, lines, dict(found), checks, parts=parts)
