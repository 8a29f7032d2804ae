"""Fair shares of the fetch pool: one client's fetches queue behind its own, not others'."""

from __future__ import annotations

import asyncio

import pytest

from app.images.shares import FetchShares

pytestmark = pytest.mark.anyio


def assert_nothing_left_behind(shares: FetchShares) -> None:
    """A client with nothing in flight or queued keeps no queue: keys and addresses come and
    go, and their queues must not pile up."""
    assert shares._slots == {}
    assert shares._users == {}


async def test_a_client_past_its_share_waits_while_another_goes_on() -> None:
    shares = FetchShares(per_client=2)
    release = asyncio.Event()
    started: list[str] = []

    async def fetch(client: str, name: str) -> None:
        async with shares.slot(client):
            started.append(name)
            await release.wait()

    tasks = [asyncio.create_task(fetch("greedy", f"greedy-{i}")) for i in range(3)]
    tasks.append(asyncio.create_task(fetch("other", "other-0")))
    await asyncio.sleep(0.01)
    assert started == ["greedy-0", "greedy-1", "other-0"]
    release.set()
    await asyncio.gather(*tasks)
    assert started[-1] == "greedy-2"
    assert_nothing_left_behind(shares)


async def test_a_cancelled_wait_gives_its_place_back() -> None:
    shares = FetchShares(per_client=1)

    async def wait_for_a_slot() -> None:
        async with shares.slot("client"):
            pass

    async with shares.slot("client"):
        waiting = asyncio.create_task(wait_for_a_slot())
        await asyncio.sleep(0.01)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    assert_nothing_left_behind(shares)
    async with asyncio.timeout(1), shares.slot("client"):
        pass
