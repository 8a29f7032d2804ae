"""The process-memory state backend's bounded table and byte ledgers."""

from __future__ import annotations

import pytest

from app.state import MemoryState, Quota


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_a_full_table_drops_expired_entries_first_then_the_oldest() -> None:
    clock = Clock()
    state = MemoryState(max_entries=2, clock=clock)
    await state.set("short", "1", 1)
    await state.set("long", "2", 100)
    clock.now += 2

    await state.set("third", "3", 100)  # the full table is swept: "short" had expired
    assert await state.get("long") == "2"
    await state.set("fourth", "4", 100)  # swept a moment ago: the oldest entry makes room

    assert await state.get("long") is None
    assert (await state.get("third"), await state.get("fourth")) == ("3", "4")


@pytest.mark.anyio
async def test_a_full_table_is_swept_again_a_second_later() -> None:
    clock = Clock()
    state = MemoryState(max_entries=2, clock=clock)
    await state.set("a", "1", 100)
    await state.set("b", "2", 1.5)
    await state.set("c", "3", 100)  # sweeps (nothing expired), drops the oldest: "a"
    clock.now += 2

    await state.set("d", "4", 100)  # a second later: "b" has expired and goes first

    assert (await state.get("c"), await state.get("d")) == ("3", "4")


@pytest.mark.anyio
async def test_an_entry_extended_again_and_again_does_not_grow_the_expiry_heap() -> None:
    clock = Clock()
    state = MemoryState(clock=clock)
    quota = [Quota("images", 10_000)]
    assert await state.set_counted("image", "x" * 100, 60, quota)
    for _ in range(10_000):
        clock.now += 0.001
        assert await state.extend_counted("image", 60, quota)
    ledger = state._ledgers["images"]
    assert len(ledger.expiries) <= 2 * len(ledger.entries) + 64
    assert ledger.total == 100
    clock.now += 61
    assert await state.set_counted("other", "y" * 9_999, 60, quota)  # the image's bytes freed
