"""The asyncio load driver: a closed loop of keep-alive connections, bounded in time and count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.client import Connection, Exchange
from bench.framing import Framing

CONNECT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Load:
    """What to send, where, how many at once, and for how long."""

    host: str
    port: int
    request: bytes
    concurrency: int
    duration_s: float
    streaming: bool
    expected_tokens: int | None = None  # a stream with fewer content events is incomplete
    max_requests: int = 1_000_000
    grace_s: float = 60.0  # how long exchanges under way at the deadline may take to finish
    framing: Framing = "chat"  # how a stream is read: chat, raw (Takeoff) or responses
    next_request: Callable[[], bytes] | None = None  # a new request each time, not `request`
    settle_s: float = 0.0  # a pause between opening the connections and the first request


@dataclass
class LoadResult:
    """Every exchange's outcome; `elapsed_s` runs until the last one finished."""

    elapsed_s: float = 0.0
    ok: int = 0
    failed: int = 0
    incomplete: int = 0
    events: int = 0
    tokens: int = 0  # the content events among `events`
    latencies_s: list[float] = field(default_factory=list)
    ttfts_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0

    def note_error(self, reason: str) -> None:
        key = reason[:120]
        self.errors[key] = self.errors.get(key, 0) + 1


class _Budget:
    def __init__(self, limit: int, deadline: float) -> None:
        self.left, self.deadline = limit, deadline

    def take(self) -> bool:
        if self.left <= 0 or time.perf_counter() >= self.deadline:
            return False
        self.left -= 1
        return True


def _record(load: Load, result: LoadResult, exchange: Exchange) -> None:
    if exchange.status != 200 and exchange.error is None:
        exchange.error = f"HTTP {exchange.status}"
    if (
        load.streaming
        and exchange.error is None
        and load.expected_tokens is not None
        and exchange.tokens < load.expected_tokens
    ):
        exchange.error = f"{exchange.tokens} of {load.expected_tokens} content chunks"
    if exchange.error is not None:
        result.failed += 1
        result.incomplete += int(load.streaming)
        result.note_error(exchange.error)
        return
    result.ok += 1
    result.events += exchange.events
    result.tokens += exchange.tokens
    result.latencies_s.append(exchange.latency_s)
    if exchange.ttft_s is not None:
        result.ttfts_s.append(exchange.ttft_s)


async def _open(load: Load) -> Connection:
    return await Connection.open(
        load.host, load.port, streaming=load.streaming, framing=load.framing
    )


async def _worker(load: Load, connection: Connection, budget: _Budget, result: LoadResult) -> None:
    try:
        while budget.take():
            if connection.closed:
                connection = await _open(load)
            request = load.request if load.next_request is None else load.next_request()
            _record(load, result, await connection.send(request))
    except OSError as exc:
        result.failed += 1
        result.note_error(f"connection failed: {exc}")
    finally:
        connection.close()


async def open_connections(
    host: str,
    port: int,
    count: int,
    *,
    streaming: bool,
    keep_body: bool = False,
    framing: Framing = "chat",
) -> list[Connection]:
    """`count` keep-alive connections, all or none (OSError naming the first failure)."""
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        opened = await asyncio.gather(
            *(
                Connection.open(
                    host, port, streaming=streaming, keep_body=keep_body, framing=framing
                )
                for _ in range(count)
            ),
            return_exceptions=True,
        )
    connections = [item for item in opened if isinstance(item, Connection)]
    failures = [item for item in opened if not isinstance(item, Connection)]
    if failures:
        for connection in connections:
            connection.close()
        raise OSError(f"{len(failures)} of {count} connections failed: {failures[0]}")
    return connections


async def _open_all(load: Load) -> list[Connection]:
    return await open_connections(
        load.host, load.port, load.concurrency, streaming=load.streaming, framing=load.framing
    )


async def run_load(load: Load) -> LoadResult:
    """Open every connection, then run exchanges back to back on each until the deadline."""
    connections = await _open_all(load)
    if load.settle_s:
        await asyncio.sleep(load.settle_s)
    result = LoadResult()
    started = time.perf_counter()
    budget = _Budget(load.max_requests, started + load.duration_s)
    tasks = [asyncio.create_task(_worker(load, c, budget, result)) for c in connections]
    _, unfinished = await asyncio.wait(tasks, timeout=load.duration_s + load.grace_s)
    for task in unfinished:
        task.cancel()
    if unfinished:
        await asyncio.wait(unfinished)
        result.failed += len(unfinished)
        result.incomplete += len(unfinished) if load.streaming else 0
        result.note_error(f"still running {load.grace_s:g} s after the deadline")
    result.elapsed_s = time.perf_counter() - started
    return result


async def fetch_once(
    host: str, port: int, request: bytes, *, streaming: bool, framing: Framing = "chat"
) -> Exchange:
    """One exchange on a fresh connection, body kept, for checking what a target answers."""
    connection = await Connection.open(
        host, port, streaming=streaming, keep_body=True, framing=framing
    )
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            return await connection.send(request)
    finally:
        connection.close()
