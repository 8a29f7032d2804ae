"""The stall watchdog: a step that takes too long ends the block; time between steps doesn't."""

from __future__ import annotations

import asyncio

import pytest

from app.service.watchdog import StallWatchdog

pytestmark = pytest.mark.anyio

LIMIT_S = 0.05


async def test_a_step_over_the_limit_raises_timeout_error() -> None:
    async def stalled_step() -> None:
        with StallWatchdog(LIMIT_S) as watch:
            watch.waiting()
            await asyncio.sleep(LIMIT_S * 4)

    with pytest.raises(TimeoutError):
        await stalled_step()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_steps_under_the_limit_pass_however_long_the_whole() -> None:
    with StallWatchdog(LIMIT_S) as watch:
        for _ in range(8):
            watch.waiting()
            await asyncio.sleep(LIMIT_S / 4)
            watch.resumed()
    # 8 steps of a quarter of the limit: twice the limit in all, and no timeout


async def test_time_between_steps_is_not_counted() -> None:
    with StallWatchdog(LIMIT_S) as watch:
        watch.waiting()
        await asyncio.sleep(LIMIT_S / 4)
        watch.resumed()
        await asyncio.sleep(LIMIT_S * 3)  # a slow client, say
        watch.waiting()
        await asyncio.sleep(LIMIT_S / 4)
        watch.resumed()


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def stream() -> None:
        with StallWatchdog(LIMIT_S * 10) as watch:
            watch.waiting()
            await asyncio.sleep(10)

    task = asyncio.create_task(stream())
    await asyncio.sleep(LIMIT_S / 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
