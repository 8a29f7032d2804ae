"""The response cache: what a hit costs the gateway, and how fast a job's answer comes back.

`python -m bench.cache` starts the mock upstream and a fresh `python -m app` whose models
keep their answers, then:

1. sends `--requests` small requests (a prompt and a small PNG as a data URI) one after
   another to a model without a cache, and the same to one with a cache (every one a hit
   after the first), over one kept-alive connection: the gateway's CPU per request for each;
2. asks a Masterpiece X-style job model (a `--job-s` job on the mock, text only) once, then
   `--requests` times more: the first answer's time, and the hits' median and 99th percentile.

Goals: a hit costs no more CPU than the small request's path; a job's answer comes from the
cache in under 5 ms.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import uvloop
from PIL import Image

from bench.payloads import MODEL_PREFIX, MPX_MODEL, model_name, write_gateway_config
from bench.procs import HOST, Service, start_gateway, start_mock
from bench.upstreams import MPX_API_KEY

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_MODEL = model_name(16, 0)
PLAIN = MODEL_PREFIX + UPSTREAM_MODEL
CACHED = "cached/" + UPSTREAM_MODEL
CACHED_JOB = "cached-" + MPX_MODEL
JOB_HIT_GOAL_MS = 5.0


def _image() -> str:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 90)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def body(model: str, prompt: str = "Describe this image in one sentence.") -> dict[str, object]:
    content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": IMAGE}}]
    return {"model": model, "messages": [{"role": "user", "content": content}]}


IMAGE = _image()


def config(folder: Path, mock_port: int) -> Path:
    path = write_gateway_config(folder, mock_port)
    base = f"http://{HOST}:{mock_port}"
    with path.open("a") as more:
        more.write(
            f"""  - name: "cached/*"
    provider: openai
    base_url: {base}/v1
    api_key: bench-upstream-key
    cache: {{ttl_s: 600}}
  - name: "{CACHED_JOB}"
    provider: masterpiecex
    upstream_model: {MPX_MODEL}
    base_url: {base}
    api_key: {MPX_API_KEY}
    poll_interval_s: 0.5
    timeout_s: 120
    cache: {{ttl_s: 600}}
"""
        )
    return path


def cpu_ms_per_request(gateway: Service, client: httpx.Client, model: str, count: int) -> float:
    client.post("/v1/chat/completions", json=body(model)).raise_for_status()  # warm, or kept
    before = gateway.cpu_seconds()
    for _ in range(count):
        reply = client.post("/v1/chat/completions", json=body(model))
        reply.raise_for_status()
    return (gateway.cpu_seconds() - before) * 1000 / count


def job_times_ms(client: httpx.Client, count: int, job_s: float) -> tuple[float, list[float]]:
    # Text only: the mock's Masterpiece X takes no uploads.
    prompt = f"Write one sentence about benchmarks. [job-{job_s:g}s]"
    request = {"model": CACHED_JOB, "messages": [{"role": "user", "content": prompt}]}
    started = time.perf_counter()
    first = client.post("/v1/chat/completions", json=request, timeout=job_s + 60)
    first.raise_for_status()
    first_ms = (time.perf_counter() - started) * 1000
    hits = []
    for _ in range(count):
        started = time.perf_counter()
        reply = client.post("/v1/chat/completions", json=request)
        reply.raise_for_status()
        if reply.headers.get("x-gateway-cache") != "hit":
            raise SystemExit(f"a repeated job request was a {reply.headers.get('x-gateway-cache')}")
        hits.append((time.perf_counter() - started) * 1000)
    return first_ms, hits


async def measure(folder: Path, count: int, job_s: float) -> dict[str, float]:
    mock = await start_mock(ROOT, folder / "mock.log")
    try:
        gateway = await start_gateway(ROOT, config(folder, mock.port), folder / "gateway.log")
        try:
            with httpx.Client(base_url=f"http://{HOST}:{gateway.port}", timeout=30) as client:
                plain = cpu_ms_per_request(gateway, client, PLAIN, count)
                hit = cpu_ms_per_request(gateway, client, CACHED, count)
                first_ms, hits = job_times_ms(client, count, job_s)
        finally:
            gateway.stop()
    finally:
        mock.stop()
    ordered = sorted(hits)
    return {
        "small request, gateway CPU ms": plain,
        "cache hit, gateway CPU ms": hit,
        "job, first answer ms": first_ms,
        "job from the cache, median ms": statistics.median(hits),
        "job from the cache, p99 ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cache", description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--job-s", type=float, default=3.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as folder:
        found = uvloop.run(measure(Path(folder), args.requests, args.job_s))
    for name, value in found.items():
        print(f"{name:<36}{value:>10.3f}")
    met = (
        found["cache hit, gateway CPU ms"] <= found["small request, gateway CPU ms"]
        and found["job from the cache, median ms"] < JOB_HIT_GOAL_MS
    )
    print("goals met" if met else "goals not met")


if __name__ == "__main__":
    main()
