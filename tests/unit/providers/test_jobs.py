"""`wait_for_job`: when it polls, when it stops, and what it raises, on a clock it does not own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from app.errors import (
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamJobFailed,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.providers.jobs import MALFORMED_POLLS, JobState, MalformedJobReply, wait_for_job
from app.providers.upstream import MalformedReply

pytestmark = pytest.mark.anyio

QUEUED = JobState("queued")
RUNNING = JobState("running")
DONE = JobState("succeeded", output="the answer")


class FakeTime:
    """A clock that moves only when the loop sleeps, and a record of each sleep and poll."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.polls: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def checker(self, *answers: JobState | Exception) -> Callable[[], Awaitable[JobState]]:
        """A `check` that gives `answers` in turn (the last one again and again)."""
        queue = list(answers)

        async def check() -> JobState:
            self.polls.append(self.now)
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            if isinstance(answer, Exception):
                raise answer
            return answer

        return check


def at_most(value: float) -> Callable[[], float]:
    """A jitter source that always draws `value` (0 gives the shortest first wait)."""
    return lambda: value


async def wait(
    time: FakeTime,
    check: Callable[[], Awaitable[JobState]],
    *,
    interval_s: float = 2.0,
    timeout_s: float = 60.0,
    jitter: float = 0.5,  # the middle draw: the first wait is exactly one interval
    first: JobState | None = None,
) -> JobState:
    return await wait_for_job(
        check,
        interval_s=interval_s,
        deadline=time.clock() + timeout_s,
        sleep=time.sleep,
        clock=time.clock,
        jitter=at_most(jitter),
        first=first,
    )


async def test_success_after_several_polls() -> None:
    time = FakeTime()

    state = await wait(time, time.checker(QUEUED, RUNNING, RUNNING, DONE))

    assert state == DONE
    assert len(time.polls) == 4
    assert time.sleeps == [2.0, 2.0, 2.0, 2.0]
    assert time.polls == [1002.0, 1004.0, 1006.0, 1008.0]


async def test_a_job_already_done_is_not_polled() -> None:
    time = FakeTime()

    state = await wait(time, time.checker(RUNNING), first=DONE)

    assert state is DONE
    assert time.polls == []
    assert time.sleeps == []


async def test_a_job_known_to_run_is_polled_until_done() -> None:
    time = FakeTime()

    state = await wait(time, time.checker(DONE), first=QUEUED)

    assert state == DONE
    assert len(time.polls) == 1


async def test_a_failed_job_raises_with_the_upstream_reason() -> None:
    time = FakeTime()
    failed = JobState("failed", error="the image could not be decoded")

    with pytest.raises(UpstreamJobFailed) as raised:
        await wait(time, time.checker(RUNNING, failed))

    assert "the image could not be decoded" in raised.value.message
    assert raised.value.code == "job_failed"
    assert raised.value.status_code == 502
    assert len(time.polls) == 2


async def test_a_job_that_failed_before_any_poll_raises_at_once() -> None:
    time = FakeTime()

    with pytest.raises(UpstreamJobFailed):
        await wait(time, time.checker(DONE), first=JobState("failed", error="out of credits"))

    assert time.polls == []


async def test_a_failed_job_without_a_reason_still_raises() -> None:
    time = FakeTime()

    with pytest.raises(UpstreamJobFailed) as raised:
        await wait(time, time.checker(JobState("failed")))

    assert raised.value.message


async def test_the_deadline_raises_upstream_timeout() -> None:
    time = FakeTime()

    with pytest.raises(UpstreamTimeout) as raised:
        await wait(time, time.checker(RUNNING), interval_s=2.0, timeout_s=7.0)

    assert raised.value.status_code == 504
    assert raised.value.code == "upstream_timeout"
    assert time.now == pytest.approx(1007.0)
    assert all(poll < 1007.0 for poll in time.polls)
    assert len(time.polls) == 3


async def test_no_sleep_goes_past_the_deadline() -> None:
    time = FakeTime()

    with pytest.raises(UpstreamTimeout):
        await wait(time, time.checker(RUNNING), interval_s=3.0, timeout_s=5.0)

    assert time.sleeps == [3.0, 2.0]
    assert time.polls == [1003.0]


async def test_the_upstream_hint_sets_the_next_wait() -> None:
    time = FakeTime()
    hinted = JobState("running", poll_after_s=0.25)

    await wait(time, time.checker(hinted, JobState("queued", poll_after_s=7.0), DONE))

    assert time.sleeps == [2.0, 0.25, 7.0]


async def test_a_hint_on_the_first_state_replaces_the_spread_first_wait() -> None:
    time = FakeTime()

    await wait(time, time.checker(DONE), first=JobState("queued", poll_after_s=0.5), jitter=0.0)

    assert time.sleeps == [0.5]


async def test_the_hint_applies_once() -> None:
    time = FakeTime()
    hinted = JobState("running", poll_after_s=9.0)

    await wait(time, time.checker(hinted, RUNNING, DONE), timeout_s=100)

    assert time.sleeps == [2.0, 9.0, 2.0]


@pytest.mark.parametrize(("draw", "first_wait"), [(0.0, 1.0), (0.5, 2.0), (0.999, 2.998)])
async def test_the_first_poll_is_spread_over_a_whole_interval(
    draw: float, first_wait: float
) -> None:
    time = FakeTime()

    await wait(time, time.checker(RUNNING, DONE), interval_s=2.0, jitter=draw)

    assert time.sleeps[0] == pytest.approx(first_wait)
    assert time.sleeps[1:] == [2.0]


async def test_jobs_started_together_first_poll_at_different_times() -> None:
    first_waits = []
    for draw in (0.1, 0.4, 0.9):
        time = FakeTime()
        await wait(time, time.checker(DONE), interval_s=1.0, jitter=draw)
        first_waits.append(time.sleeps[0])

    assert len(set(first_waits)) == 3
    assert all(0.5 <= seconds <= 1.5 for seconds in first_waits)


@pytest.mark.parametrize(
    "error",
    [
        UpstreamError("the upstream failed (503)"),
        UpstreamUnavailable("the upstream could not be reached"),
        UpstreamTimeout("the upstream did not answer in time"),
    ],
)
async def test_a_retryable_poll_failure_is_polled_again(error: UpstreamError) -> None:
    time = FakeTime()

    state = await wait(time, time.checker(RUNNING, error, error, DONE))

    assert state == DONE
    assert len(time.polls) == 4
    assert time.sleeps == [2.0, 2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    "error",
    [
        UpstreamAuthFailed("the upstream refused the gateway's credentials (401)"),
        UpstreamRejected("the upstream rejected the request: no such job"),
        UpstreamJobFailed("the upstream job failed"),
    ],
)
async def test_a_poll_failure_that_will_not_go_away_is_raised(error: Exception) -> None:
    time = FakeTime()

    with pytest.raises(type(error)) as raised:
        await wait(time, time.checker(RUNNING, error, DONE))

    assert raised.value is error
    assert len(time.polls) == 2


async def test_retryable_poll_failures_still_end_at_the_deadline() -> None:
    time = FakeTime()

    with pytest.raises(UpstreamTimeout):
        await wait(time, time.checker(UpstreamError("502")), interval_s=1.0, timeout_s=4.5)

    assert len(time.polls) == 4


async def test_a_malformed_reply_is_polled_again_a_couple_of_times_only() -> None:
    time = FakeTime()
    garbled = MalformedReply("the upstream sent a malformed reply")

    with pytest.raises(MalformedJobReply) as raised:
        await wait(time, time.checker(RUNNING, garbled, RUNNING, garbled), timeout_s=600)

    assert raised.value.code == "upstream_failed"
    assert raised.value.status_code == 502
    assert not raised.value.retryable  # another attempt would submit the job again
    assert len(time.polls) == 1 + MALFORMED_POLLS + 1  # the good ones don't count


async def test_cancellation_while_sleeping_stops_the_polling() -> None:
    time = FakeTime()
    asleep = asyncio.Event()
    never = asyncio.Event()

    async def sleep(seconds: float) -> None:
        time.sleeps.append(seconds)
        asleep.set()
        await never.wait()

    check = time.checker(RUNNING)
    task = asyncio.create_task(
        wait_for_job(
            check,
            interval_s=0.01,
            deadline=time.clock() + 60,
            sleep=sleep,
            clock=time.clock,
            jitter=at_most(0.0),
            first=RUNNING,
        )
    )
    await asleep.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(5):
        await asyncio.sleep(0)
    assert time.polls == []
    assert len(time.sleeps) == 1


async def test_cancellation_between_polls_with_the_real_sleep() -> None:
    polls: list[float] = []
    loop = asyncio.get_running_loop()

    async def check() -> JobState:
        polls.append(loop.time())
        return RUNNING

    task = asyncio.create_task(wait_for_job(check, interval_s=0.01, deadline=loop.time() + 60))
    for _ in range(200):
        if len(polls) >= 3:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    seen = len(polls)

    await asyncio.sleep(0.05)

    assert len(polls) == seen
