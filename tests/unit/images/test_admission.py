"""Image work admitted by the memory it takes, clients taking turns; a caller that leaves stops
its work, whose thread and bytes stay counted until it has ended."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from app.images.admission import Conversions

pytestmark = pytest.mark.anyio


class Gate:
    """Work that runs until the test opens it (or is told to stop), noting the order it ran."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.started: list[str] = []
        self.stopped: list[str] = []

    def work(self, name: str) -> Callable[[threading.Event], str]:
        def run(stop: threading.Event) -> str:
            self.started.append(name)
            while not self.opened.wait(0.005):
                if stop.is_set():
                    self.stopped.append(name)
                    return name
            return name

        return run


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_work_is_admitted_by_the_memory_it_takes_not_by_a_count() -> None:
    conversions, gate = Conversions(threads=4, max_bytes=100, per_client_bytes=100), Gate()
    tasks = [
        asyncio.create_task(conversions.run(f"c{n}", 60, gate.work(f"w{n}"))) for n in range(3)
    ]
    await settle()

    assert gate.started == ["w0"]  # two would hold 120 of 100, whatever the threads free
    assert conversions.held == 60
    gate.opened.set()
    assert await asyncio.gather(*tasks) == ["w0", "w1", "w2"]
    assert conversions.held == 0


async def test_clients_take_turns_and_one_holds_no_more_than_its_share() -> None:
    conversions, gate = Conversions(threads=2, max_bytes=100, per_client_bytes=50), Gate()
    greedy = [
        asyncio.create_task(conversions.run("greedy", 30, gate.work(f"g{n}"))) for n in range(6)
    ]
    await settle()
    other = asyncio.create_task(conversions.run("other", 30, gate.work("o")))
    await settle()

    # One of the greedy client's images at a time (two would pass its share of 50); the other
    # client's starts at once beside it, ahead of the greedy client's queue.
    assert gate.started == ["g0", "o"]
    gate.opened.set()
    await asyncio.gather(*greedy, other)


async def test_a_client_alone_may_take_more_than_its_share_once() -> None:
    conversions, gate = Conversions(threads=2, max_bytes=100, per_client_bytes=20), Gate()
    gate.opened.set()

    assert await conversions.run("big", 90, gate.work("big")) == "big"


async def test_a_caller_that_leaves_stops_its_work_which_keeps_its_bytes_until_it_ends() -> None:
    conversions, gate = Conversions(threads=1, max_bytes=100, per_client_bytes=100), Gate()
    running = asyncio.create_task(conversions.run("a", 80, gate.work("first")))
    waiting = asyncio.create_task(conversions.run("b", 80, gate.work("never")))
    await settle()

    running.cancel()
    waiting.cancel()
    await asyncio.gather(running, waiting, return_exceptions=True)
    await settle()

    assert gate.stopped == ["first"]  # told to stop, and it did
    assert gate.started == ["first"]  # the waiting one never started
    assert conversions.held == 0
    gate.opened.set()
    assert await conversions.run("c", 100, gate.work("next")) == "next"
