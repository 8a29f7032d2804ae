"""Work on worker threads: a bounded number at a time, and a cancelled caller's thread still
counted until it ends."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable

import pytest

from app.server.threads import WorkerThreads

pytestmark = pytest.mark.anyio

WAIT_S = 5.0


class Gate:
    """Work that waits on the test: `entered` once a thread runs it, until `opened`."""

    def __init__(self, result: object = None) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.result = result

    def __call__(self) -> object:
        self.entered.set()
        assert self.opened.wait(WAIT_S)
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)


async def test_the_work_runs_on_another_thread_and_its_result_or_error_comes_back() -> None:
    threads = WorkerThreads(2)

    assert await threads.run(threading.get_ident) != threading.get_ident()
    with pytest.raises(ZeroDivisionError):
        await threads.run(lambda: 1 // 0)


async def test_no_more_than_the_limit_run_at_once() -> None:
    threads, running, most = WorkerThreads(2), [0], [0]
    lock = threading.Lock()

    def work() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1

    await asyncio.gather(*[threads.run(work) for _ in range(6)])

    assert most == [2]


async def test_a_cancelled_callers_thread_keeps_its_place_until_it_ends() -> None:
    threads, first, second = WorkerThreads(1), Gate(), Gate("second")
    caller = asyncio.ensure_future(threads.run(first))
    await until(first.entered.is_set)

    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    waiting = asyncio.ensure_future(threads.run(second))
    await asyncio.sleep(0.05)
    assert not second.entered.is_set()  # the first thread still works: no place is free

    first.opened.set()
    await until(second.entered.is_set)
    second.opened.set()
    assert await waiting == "second"


async def test_work_cancelled_while_it_waits_for_a_place_never_runs() -> None:
    threads, first, queued = WorkerThreads(1), Gate("first"), Gate()
    running = asyncio.ensure_future(threads.run(first))
    await until(first.entered.is_set)
    caller = asyncio.ensure_future(threads.run(queued))
    await asyncio.sleep(0.01)

    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    first.opened.set()
    assert await running == "first"
    assert await threads.run(lambda: "after") == "after"

    assert not queued.entered.is_set()


async def test_a_failure_nobody_waits_for_any_more_is_not_reported_as_unread() -> None:
    unread: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: unread.append(context))
    threads, failing = WorkerThreads(1), Gate(ValueError("late"))
    caller = asyncio.ensure_future(threads.run(failing))
    await until(failing.entered.is_set)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller

    failing.opened.set()
    assert await threads.run(lambda: "next") == "next"
    gc.collect()

    assert unread == []
