"""The client side of the ops tests: chat requests over fresh connections, and metric scrapes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

# No keep-alive: each request is a new connection, which any worker of a gateway may accept.
FRESH_CONNECTIONS = httpx.Limits(max_keepalive_connections=0)


def chat_body(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "Describe it."}], **fields}


def send_chats(
    urls: list[str],
    model: str,
    count: int,
    *,
    api_key: str | None = None,
    concurrency: int = 4,
) -> list[httpx.Response]:
    """`count` chat requests spread round-robin over `urls`, a few at a time, each on a new
    connection; the responses in the order they were sent."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}

    def send(index: int) -> httpx.Response:
        url = f"{urls[index % len(urls)]}/v1/chat/completions"
        return client.post(url, json=chat_body(model), headers=headers)

    with (
        httpx.Client(timeout=15, limits=FRESH_CONNECTIONS) as client,
        ThreadPoolExecutor(concurrency) as pool,
    ):
        return list(pool.map(send, range(count)))


def scrape(url: str) -> str:
    """`/metrics` on a new connection, so that any worker may answer."""
    with httpx.Client(timeout=10, limits=FRESH_CONNECTIONS) as client:
        response = client.get(f"{url}/metrics")
    response.raise_for_status()
    return response.text


def metric_value(exposition: str, sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` whose labels include `labels`."""
    return sum(
        found.value
        for family in text_string_to_metric_families(exposition)
        for found in family.samples
        if found.name == sample and labels.items() <= found.labels.items()
    )


def requests_by_worker(metrics_dir: Path, total: int) -> dict[int, float]:
    """`gateway_requests_total` as each worker process counted it, read from the file it
    keeps in the multiprocess directory, once `total` requests are counted (a request is
    counted when its response has been sent, a moment after the client has it)."""
    deadline = time.monotonic() + 3
    counts = counted_by_worker(metrics_dir)
    while sum(counts.values()) < total and time.monotonic() < deadline:
        time.sleep(0.02)
        counts = counted_by_worker(metrics_dir)
    return counts


def counted_by_worker(metrics_dir: Path, **labels: str) -> dict[int, float]:
    """`gateway_requests_total` (only the samples with `labels`) as each worker counted it
    so far."""
    counts: dict[int, float] = {}
    for path in sorted(metrics_dir.glob("counter_*.db")):
        pid = int(path.stem.removeprefix("counter_"))
        families = MultiProcessCollector.merge([str(path)], accumulate=True)  # type: ignore[no-untyped-call]
        counts[pid] = sum(
            found.value
            for family in families
            for found in family.samples
            if found.name == "gateway_requests_total" and labels.items() <= found.labels.items()
        )
    return counts
