"""What the benchmark sends: request bodies, a generated test image, and the gateway's config."""

from __future__ import annotations

import base64
import io
import itertools
import random
import struct
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from PIL import Image, ImageChops

from bench.upstreams import MPX_API_KEY

# The gateway routes `mock/<name>` to the mock upstream as model `<name>`.
MODEL_PREFIX = "mock/"
IMAGE_URL = "https://images.example.com/benchmarks/cat.png"
PROMPT = "Describe this image in one sentence."
# `takeoff/<shape>` goes to the mock's Takeoff endpoints, with `<shape>` as its consumer group.
TAKEOFF_PREFIX = "takeoff/"
TAKEOFF_SHAPES = ("reply-50x0ms",)
# A Masterpiece X deployment on the mock: jobs that take as long as their prompt says.
MPX_MODEL = "mpx-bench"
MPX_POLL_INTERVAL_S = 2.0
DOWNSIZE_SIZE = (2500, 2000)


def model_name(chunks: int, delay_ms: float) -> str:
    """The mock upstream's name for a reply of `chunks` tokens sent `delay_ms` apart."""
    return f"reply-{chunks}x{delay_ms:g}ms"


@cache
def noise_png(side: int, seed: int = 7) -> bytes:
    """A real, incompressible RGB PNG: `side`² pixels of seeded noise, about 3·side² bytes."""
    pixels = random.Random(seed).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def png_data_uri(base64_bytes: int) -> str:
    """A `data:image/png;base64,` URI whose base64 payload is about `base64_bytes` long."""
    side = max(2, int((base64_bytes * 3 / 4 / 3) ** 0.5))
    return "data:image/png;base64," + base64.b64encode(noise_png(side)).decode()


@cache
def gradient_png(width: int, height: int, seed: int = 7) -> bytes:
    """A large real RGB PNG: a grey gradient sprinkled with sparse colour noise. At 2500 x 2000
    it is about 3.0 MB (a 4.0 MB base64 payload), and decodes to 5 megapixels."""
    sparse = bytes(16 if value < 26 else 0 for value in range(256))  # 1 sample in 10 lit
    noise = random.Random(seed).randbytes(width * height * 3).translate(sparse)
    image = Image.frombytes("RGB", (width, height), noise)
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    ImageChops.add(image, gradient).save(out, format="PNG", compress_level=1)
    return out.getvalue()


_PNG_HEAD = 33  # the signature (8 bytes) and the IHDR chunk (25 bytes)
_LABEL_DIGITS = 24  # signature, IHDR and tEXt chunk: 75 bytes, 25 whole base64 quanta


def _text_chunk(label: int) -> bytes:
    data = b"bench\0" + b"%0*d" % (_LABEL_DIGITS, label)
    crc = zlib.crc32(b"tEXt" + data)
    return struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", crc)


class UniqueImages:
    """Data URIs of one PNG, each with a different `tEXt` chunk after its header: the same
    pixels, but new bytes, so every request is a miss in the gateway's image cache. The head is
    a whole number of base64 quanta, so only its 100 characters are encoded per URI."""

    def __init__(self, png: bytes) -> None:
        if png[12:16] != b"IHDR":
            raise ValueError("not a PNG")
        self._head = png[:_PNG_HEAD]
        self._tail = base64.b64encode(png[_PNG_HEAD:])
        self._labels = itertools.count()
        assert (_PNG_HEAD + len(_text_chunk(0))) % 3 == 0

    def payload(self) -> bytes:
        """The next base64 payload (without the `data:image/png;base64,` prefix)."""
        return base64.b64encode(self._head + _text_chunk(next(self._labels))) + self._tail

    @property
    def payload_size(self) -> int:
        return len(base64.b64encode(self._head + _text_chunk(0))) + len(self._tail)


_PLACEHOLDER = "BENCH-IMAGE-PAYLOAD"


def unique_image_bodies(
    model: str, images: UniqueImages, *, stream: bool, detail: str | None
) -> Callable[[], bytes]:
    """A function giving chat bodies that differ only in their image's bytes (and not in
    length). The JSON is built once around a placeholder."""
    template = chat_body(
        model, image_url=f"data:image/png;base64,{_PLACEHOLDER}", stream=stream, detail=detail
    )
    head, _, tail = template.partition(_PLACEHOLDER.encode())
    return lambda: head + images.payload() + tail


def takeoff_multipart(json_data: dict[str, object], image: bytes) -> tuple[bytes, str]:
    """A Takeoff `/image_generate[_stream]` body as its client sends it: a `json_data` part and
    an `image_data` part. Returns the body and its Content-Type."""
    boundary = "bench-boundary-7d1f0c9e"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="json_data"\r\n'
        "Content-Type: application/json\r\n\r\n"
    ).encode()
    body += orjson.dumps(json_data)
    body += (
        f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="image_data"; '
        'filename="image.png"\r\nContent-Type: image/png\r\n\r\n'
    ).encode()
    body += image + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def job_body(model: str, job_s: float) -> bytes:
    """A text-only request for a job upstream; the mock's job runs for `job_s` seconds."""
    prompt = f"Write one sentence about benchmarks. [job-{job_s:g}s]"
    return orjson.dumps(
        {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 64}
    )


def chat_body(
    model: str,
    *,
    image_url: str,
    stream: bool,
    max_tokens: int = 64,
    detail: str | None = None,
) -> bytes:
    """A chat completion request: a text part and one image part."""
    image: dict[str, str] = {"url": image_url}
    if detail is not None:
        image["detail"] = detail
    body: dict[str, object] = {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": PROMPT},
                    {"type": "image_url", "image_url": image},
                ],
            }
        ],
        "max_tokens": max_tokens,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def responses_body(
    model: str,
    *,
    image_url: str,
    stream: bool,
    max_output_tokens: int = 64,
    detail: str | None = None,
) -> bytes:
    """A Responses API request asking what `chat_body` asks: one user message with an
    `input_text` and an `input_image` part. Stored, as by default."""
    image: dict[str, str] = {"type": "input_image", "image_url": image_url}
    if detail is not None:
        image["detail"] = detail
    body: dict[str, object] = {
        "model": model,
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": PROMPT},
                    image,
                ],
            }
        ],
        "max_output_tokens": max_output_tokens,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def gateway_config(
    mock_port: int, *, api_key: str | None = None, rpm: int = 0, redis_url: str | None = None
) -> str:
    """A config whose `mock/*` family goes to the mock upstream through the `openai` provider;
    `takeoff/<shape>` models and the Masterpiece X model go to the mock's endpoints for those.
    With `api_key`, clients need it; `rpm` limits that key and `mock/*`; with `redis_url`, the
    state is kept there."""
    base = f"http://127.0.0.1:{mock_port}"
    keys = f'[{{key: "{api_key}", name: bench, rpm: {rpm}}}]' if api_key else "[]"
    state = f"state:\n  backend: redis\n  url: {redis_url}\n" if redis_url else ""
    takeoff = "".join(
        f"""  - name: "{TAKEOFF_PREFIX}{shape}"
    provider: takeoff
    base_url: {base}
    timeout_s: 120
    options:
      consumer_group: "{shape}"
"""
        for shape in TAKEOFF_SHAPES
    )
    return f"""# Generated by `python -m bench`: every model goes to the mock upstream.
server:
  api_keys: {keys}
  playground: false
{state}models:
  - name: "{MODEL_PREFIX}*"
    provider: openai
    base_url: {base}/v1
    api_key: bench-upstream-key
    timeout_s: 120
    rpm: {rpm}
{takeoff}  - name: "{MPX_MODEL}"
    provider: masterpiecex
    base_url: {base}
    api_key: {MPX_API_KEY}
    poll_interval_s: {MPX_POLL_INTERVAL_S:g}
    timeout_s: 120
"""


def write_gateway_config(
    folder: Path, mock_port: int, name: str = "gateway.yaml", **options: Any
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(gateway_config(mock_port, **options))
    return path
