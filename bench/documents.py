"""Documents: what reading a PDF costs the gateway, page by page, on an image-only upstream.

`python -m bench.documents` starts the mock upstream and a fresh `python -m app` for each part:

1. `--requests` documents of `--pages` pages (text pages and photo pages in turn), one after
   another on one worker: the gateway's CPU per page (its render processes included) and the
   peak memory of the worker and of a render process. Every document differs (a page says which
   request it came in), so none is served from the gateway's render cache.
2. One document of 50 pages: the worker's peak memory.
3. The same documents four at a time on one worker and on two: documents per second, and the
   ratio between them.

Goals: at most 30 ms of CPU per page, a 50-page document under 200 MB, and two workers at
least 1.8 times one.
"""

from __future__ import annotations

import argparse
import base64
import io
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvloop
from PIL import Image, ImageDraw
from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from bench.payloads import MODEL_PREFIX, model_name, write_gateway_config
from bench.procs import HOST, Service, command_line, process_tree, start_gateway, start_mock

ROOT = Path(__file__).resolve().parent.parent
MODEL = MODEL_PREFIX + model_name(16, 0)
CPU_MS_PER_PAGE_GOAL = 30.0
BIG_DOCUMENT_PAGES = 50
BIG_DOCUMENT_RSS_GOAL_MB = 200.0
SCALING_GOAL = 1.8
CONCURRENCY = 4
_WORDS = (
    "invoice",
    "total",
    "amount",
    "due",
    "payment",
    "terms",
    "net",
    "thirty",
    "days",
    "order",
    "quantity",
    "unit",
    "price",
    "tax",
    "shipping",
    "delivery",
    "address",
    "account",
    "number",
    "reference",
    "date",
    "customer",
    "supplier",
    "description",
)


def document(pages: int, seed: int) -> bytes:
    """A letter-size PDF: pages of dense text and pages of a photo, in turn; `seed` makes each
    document's text its own."""
    rng = random.Random(seed)
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=letter, invariant=True)
    for number in range(pages):
        if number % 2:
            page.drawImage(ImageReader(io.BytesIO(_photo(rng))), 36, 36, width=540, height=720)
        else:
            page.setFont("Helvetica", 10)
            page.drawString(72, 750, f"Document {seed}, page {number + 1}")
            for line in range(55):
                words = " ".join(rng.choice(_WORDS) for _ in range(14))
                page.drawString(72, 730 - 12 * line, words)
        page.showPage()
    page.save()
    return out.getvalue()


def _photo(rng: random.Random) -> bytes:
    image = Image.new("RGB", (900, 1200), (rng.randrange(256), 120, 90))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randrange(900), rng.randrange(1200)
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x, y, x + rng.randrange(40, 300), y + rng.randrange(40, 300)), fill=color)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def body(pdf: bytes) -> dict[str, object]:
    data_uri = "data:application/pdf;base64," + base64.b64encode(pdf).decode()
    content = [
        {"type": "text", "text": "Summarise this document."},
        {"type": "file", "file": {"filename": "document.pdf", "file_data": data_uri}},
    ]
    return {"model": MODEL, "messages": [{"role": "user", "content": content}]}


def send(url: str, pdf: bytes) -> None:
    reply = httpx.post(f"{url}/v1/chat/completions", json=body(pdf), timeout=120)
    if reply.status_code != 200:
        raise SystemExit(f"the gateway answered {reply.status_code}: {reply.text[:300]}")


def url_of(service: Service) -> str:
    return f"http://{HOST}:{service.port}"


def renderer_peak_rss_mb(gateway: Service) -> float:
    """The largest high-water mark of the render processes (those the fork server made)."""
    peaks = [0.0]
    for pid in process_tree(gateway.pid):
        if "forkserver" in command_line(pid):
            peaks.append(_hwm_mb(pid))
    return max(peaks)


def _hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Figures:
    cpu_ms_per_page: float
    worker_peak_rss_mb: float
    renderer_peak_rss_mb: float
    big_document_peak_rss_mb: float
    documents_per_s_1w: float
    documents_per_s_2w: float

    @property
    def scaling(self) -> float:
        return self.documents_per_s_2w / self.documents_per_s_1w


async def measure(folder: Path, requests: int, pages: int) -> Figures:
    mock = await start_mock(ROOT, folder / "mock.log")
    config = write_gateway_config(folder, mock.port)
    with config.open("a") as more_images:  # every page of the big document is an image
        more_images.write(f"images:\n  max_images_per_request: {BIG_DOCUMENT_PAGES}\n")
    documents = [document(pages, seed) for seed in range(requests)]
    try:
        gateway = await start_gateway(ROOT, config, folder / "gateway-1w.log")
        try:
            send(url_of(gateway), document(2, -1))  # render processes up, before counting
            before = gateway.cpu_seconds()
            for pdf in documents:
                send(url_of(gateway), pdf)
            cpu_ms_per_page = (gateway.cpu_seconds() - before) * 1000 / (requests * pages)
            worker_rss = _hwm_mb(gateway.pid)
            renderer_rss = renderer_peak_rss_mb(gateway)
            per_s_1w = throughput(
                url_of(gateway), [document(pages, 1000 + n) for n in range(requests)]
            )
        finally:
            gateway.stop()
        gateway = await start_gateway(ROOT, config, folder / "gateway-big.log")
        try:
            send(url_of(gateway), document(BIG_DOCUMENT_PAGES, -2))
            big_rss = _hwm_mb(gateway.pid)
        finally:
            gateway.stop()
        gateway = await start_gateway(ROOT, config, folder / "gateway-2w.log", workers=2)
        try:
            for _ in range(4):  # each worker's render processes up, whichever worker it was
                send(url_of(gateway), document(1, -3))
            per_s_2w = throughput(
                url_of(gateway), [document(pages, 2000 + n) for n in range(requests)]
            )
        finally:
            gateway.stop()
    finally:
        mock.stop()
    return Figures(cpu_ms_per_page, worker_rss, renderer_rss, big_rss, per_s_1w, per_s_2w)


def throughput(url: str, pdfs: list[bytes]) -> float:
    """Documents per second, `CONCURRENCY` in flight at a time."""
    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda pdf: send(url, pdf), pdfs))
    return len(pdfs) / (time.monotonic() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.documents", description=__doc__)
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-documents-") as folder:
        found = uvloop.run(measure(Path(folder), args.requests, args.pages))
    rows = [
        ("gateway CPU ms per page", found.cpu_ms_per_page, f"<= {CPU_MS_PER_PAGE_GOAL:g}"),
        ("worker peak RSS MB", found.worker_peak_rss_mb, ""),
        ("render process peak RSS MB", found.renderer_peak_rss_mb, ""),
        (
            f"{BIG_DOCUMENT_PAGES}-page document, worker peak RSS MB",
            found.big_document_peak_rss_mb,
            f"< {BIG_DOCUMENT_RSS_GOAL_MB:g}",
        ),
        ("documents/s, 1 worker", found.documents_per_s_1w, ""),
        ("documents/s, 2 workers", found.documents_per_s_2w, ""),
        ("2 workers / 1 worker", found.scaling, f">= {SCALING_GOAL:g}"),
    ]
    for name, value, goal in rows:
        print(f"{name:<42}{value:>10.2f}  {goal}")
    met = (
        found.cpu_ms_per_page <= CPU_MS_PER_PAGE_GOAL
        and found.big_document_peak_rss_mb < BIG_DOCUMENT_RSS_GOAL_MB
        and found.scaling >= SCALING_GOAL
    )
    print("goals met" if met else "goals not met")


if __name__ == "__main__":
    main()
