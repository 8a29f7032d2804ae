"""The request record: overlapping upstream waits, outcomes, usage."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.observe.record import RequestRecord, current_record, open_record, outcome_of, upstream_wait
from app.wire.schemas import CompletionUsage


async def wait_upstream(seconds: float) -> None:
    with upstream_wait():
        await asyncio.sleep(seconds)


@pytest.mark.anyio
async def test_parallel_upstream_calls_count_their_overlap_once() -> None:
    """`n` fanned out as parallel calls: the gateway's own time is what is left of the
    request once the union of the waits is taken out, not zero."""
    record = open_record(RequestRecord())

    async with asyncio.TaskGroup() as group:
        for _ in range(3):
            group.create_task(wait_upstream(0.2))
    busy_until = time.perf_counter() + 0.05  # the gateway's own work, after the answer
    while time.perf_counter() < busy_until:
        pass

    assert 40 <= record.overhead_ms() < record.elapsed_ms() - 150
    assert current_record() is record


@pytest.mark.anyio
async def test_waits_one_after_another_all_count() -> None:
    record = open_record(RequestRecord())

    await wait_upstream(0.1)
    await wait_upstream(0.1)

    assert record.overhead_ms() < 50
    assert record.elapsed_ms() >= 200


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "completed"),
        (400, "rejected"),
        (499, "client_disconnected"),
        (500, "error"),
        (502, "upstream_failed"),
        (503, "upstream_failed"),
        (504, "timeout"),
    ],
)
def test_each_status_has_its_outcome(status: int, outcome: str) -> None:
    assert outcome_of(status) == outcome


def test_usage_and_credits_add_up() -> None:
    record = RequestRecord()

    record.count_usage(3, 4)
    record.count_usage(5, 6)
    record.count_credits(1.5)
    record.count_credits("not a number")

    assert record.usage is not None
    assert (record.usage.prompt_tokens, record.usage.completion_tokens) == (8, 10)
    assert record.usage.credits == 1.5


@pytest.mark.parametrize("credits", [-50, float("nan"), float("inf"), 1e300, "100", True])
def test_credits_an_upstream_reports_are_counted_only_when_they_are_a_sane_number(
    credits: object,
) -> None:
    record = RequestRecord()
    record.count_credits(3)
    record.count_credits(credits)
    assert record.usage is not None
    assert record.usage.credits == 3.0


@pytest.mark.parametrize(
    ("reported", "counted"),
    [(-5, 0), (1e300, 2**31 - 1), (float("nan"), 0), ("12", 12), ("many", 0), (None, 0), (7, 7)],
)
def test_an_upstreams_token_counts_are_whole_numbers_within_bounds(
    reported: object, counted: int
) -> None:
    usage = CompletionUsage.model_validate({"prompt_tokens": reported, "completion_tokens": 1})
    assert (usage.prompt_tokens, usage.completion_tokens) == (counted, 1)
