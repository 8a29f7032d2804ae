"""The process-memory state backend's bounded table and byte ledgers."""

from __future__ import annotations

import pytest

from app.state import MemoryState, Quota
from app.state.base import ENTRY_COST


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
    assert len(ledger.expiries) <= 2 * len(ledger.sizes) + 64
    assert ledger.total == 100 + ENTRY_COST
    clock.now += 61
    # the image's bytes freed
    assert await state.set_counted("other", "y" * (9_999 - ENTRY_COST), 60, quota)


@pytest.mark.anyio
async def test_no_write_drops_another_writers_counted_entry() -> None:
    """Counted entries are bounded by their quotas, never by the table of plain entries: a
    flood of writes refuses the writer's own entries past its share, and drops nobody's."""
    state = MemoryState(max_entries=10)
    store, theirs, mine = Quota("store", 100_000), Quota("key:a", 50_000), Quota("key:b", 50_000)
    assert await state.set_counted("theirs", "kept", 60, [store, theirs])
    written = [
        await state.set_counted(f"mine-{n}", "x" * 100, 60, [store, mine]) for n in range(200)
    ]
    for n in range(20):
        await state.set(f"plain-{n}", "y", 60)  # plain entries make room among themselves

    assert await state.get("theirs") == "kept"
    room = 50_000 // (100 + ENTRY_COST)
    assert written == [True] * room + [False] * (200 - room)
    assert await state.get("plain-0") is None
    assert await state.get("plain-19") == "y"
