"""The benchmark's scenarios: what each one sends, how many at once, and what a reply looks like."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bench.client import build_request
from bench.framing import Framing
from bench.payloads import (
    DOWNSIZE_SIZE,
    IMAGE_URL,
    MODEL_PREFIX,
    TAKEOFF_PREFIX,
    UniqueImages,
    chat_body,
    gradient_png,
    model_name,
    noise_png,
    png_data_uri,
    responses_body,
    takeoff_multipart,
    unique_image_bodies,
)

CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
TAKEOFF_STREAM_PATH = "/image_generate_stream"


@dataclass(frozen=True)
class Requests:
    """What one target gets: a fixed request, or a new one each time (`next`)."""

    first: bytes
    next: Callable[[], bytes] | None = None
    framing: Framing = "chat"  # how a streamed reply is read


@dataclass(frozen=True)
class Scenario:
    """One workload, run once straight at the mock upstream and once through a fresh gateway."""

    key: str
    title: str
    concurrency: int
    stream: bool
    chunks: int  # content tokens in each reply
    delay_ms: float = 0.0  # between streamed tokens
    image_base64_bytes: int = 0  # 0 sends an https image URL; more sends a PNG data URI
    duration_s: float | None = None  # at most this long; None: the run's --duration
    upstream: str = "openai"  # the mock's wire format: "openai", or "takeoff" (multipart in)
    large_image: bool = False  # a 2500 x 2000 PNG, different bytes in every request
    detail: str | None = None  # the image part's `detail`
    probe_health: bool = False  # time GET /health on the gateway, idle and under this load
    api: Literal["chat", "responses"] = "chat"  # the gateway's API; directly, always chat
    in_default_run: bool = True
    api_key: str | None = None  # the gateway key sent through the gateway
    relay_floor: bool = False  # also measure a bare TCP relay to the mock (`bench/relay.py`)

    def headers(self, *, through_gateway: bool) -> dict[str, str]:
        if self.api_key is None or not through_gateway:
            return {}
        return {"Authorization": f"Bearer {self.api_key}"}

    def __post_init__(self) -> None:
        if self.api == "responses" and self.large_image:
            raise ValueError(f"{self.key}: varying images are sent as chat requests only")

    @property
    def upstream_model(self) -> str:
        return model_name(self.chunks, self.delay_ms)

    @property
    def gateway_model(self) -> str:
        prefix = TAKEOFF_PREFIX if self.upstream == "takeoff" else MODEL_PREFIX
        return prefix + self.upstream_model

    @property
    def varies(self) -> bool:
        """Whether every request differs (wrk sends one body, so these use the asyncio driver)."""
        return self.large_image

    def _image(self) -> str:
        return png_data_uri(self.image_base64_bytes) if self.image_base64_bytes else IMAGE_URL

    def responses(self, *, through_gateway: bool) -> bool:
        """Whether this target is asked through the Responses API."""
        return through_gateway and self.api == "responses"

    def path(self, *, through_gateway: bool) -> str:
        if self.responses(through_gateway=through_gateway):
            return RESPONSES_PATH
        return (
            TAKEOFF_STREAM_PATH if self.upstream == "takeoff" and not through_gateway else CHAT_PATH
        )

    def body(self, *, through_gateway: bool) -> bytes:
        """The request body; through the gateway, an OpenAI-style chat or Responses request."""
        model = self.gateway_model if through_gateway else self.upstream_model
        if self.responses(through_gateway=through_gateway):
            return responses_body(
                model, image_url=self._image(), stream=self.stream, detail=self.detail
            )
        return chat_body(model, image_url=self._image(), stream=self.stream, detail=self.detail)

    def requests(self, host: str, port: int, *, through_gateway: bool) -> Requests:
        path = self.path(through_gateway=through_gateway)
        model = self.gateway_model if through_gateway else self.upstream_model
        if self.large_image:
            images = UniqueImages(gradient_png(*DOWNSIZE_SIZE))
            bodies = unique_image_bodies(model, images, stream=self.stream, detail=self.detail)
            return Requests(
                build_request(host, port, path, bodies(), {}),
                lambda: build_request(host, port, path, bodies(), {}),
            )
        if self.upstream == "takeoff" and not through_gateway:
            side = max(2, int((self.image_base64_bytes * 3 / 4 / 3) ** 0.5))
            json_data: dict[str, object] = {
                "text": "Describe this image.",
                "consumer_group": self.upstream_model,
            }
            body, content_type = takeoff_multipart(json_data, noise_png(side))
            return Requests(build_request(host, port, path, body, {}, content_type), framing="raw")
        body = self.body(through_gateway=through_gateway)
        headers = self.headers(through_gateway=through_gateway)
        framing: Framing = (
            "responses" if self.responses(through_gateway=through_gateway) else "chat"
        )
        return Requests(build_request(host, port, path, body, headers), framing=framing)


@dataclass(frozen=True)
class Special:
    """A scenario with its own procedure (`bench/special.py`) instead of direct vs gateway."""

    key: str
    title: str
    concurrency: int
    in_default_run: bool = True


SMALL_IMAGE_BYTES = 16_000  # a 64 x 64 noise PNG as a data URI

SCENARIOS: tuple[Scenario | Special, ...] = (
    Scenario("small", "small non-streamed request with one image URL", 32, False, 16),
    Scenario("stream", "streamed reply of 20 chunks sent back to back", 32, True, 20),
    Scenario(
        "image",
        "non-streamed request with a ~4 MB base64 PNG",
        8,
        False,
        16,
        image_base64_bytes=4_000_000,
    ),
    Scenario(
        "streams500", "500 concurrent streams of 50 chunks 20 ms apart", 500, True, 50, delay_ms=20
    ),
    Scenario(
        "ttft",
        "time to first token, 4 concurrent streams of 20 chunks 5 ms apart",
        4,
        True,
        20,
        delay_ms=5,
        relay_floor=True,
    ),
    Scenario(
        "image-downsize",
        "~4 MB 2500 x 2000 PNG with detail low, downsized to 512 px; /health probed meanwhile",
        8,
        False,
        16,
        large_image=True,
        detail="low",
        probe_health=True,
    ),
    Special(
        "redis-state",
        "the small request with key and model rpm, state in memory and in a local Redis",
        32,
    ),
    Special("jobs200", "200 Masterpiece X jobs of 10 s pending at once, polled every 2 s", 200),
    Special(
        "takeoff-stream",
        "Takeoff multipart image streams of 50 raw-text events vs OpenAI-style streams of 50",
        32,
    ),
    Special(
        "responses",
        "the Responses API next to chat completions, small requests and streams of 20 chunks",
        32,
    ),
    Special(
        "soak",
        "1,000 streams of 61 chunks 1 s apart held open for 60 s; fds and RSS afterwards",
        1000,
        in_default_run=False,
    ),
)

# The two halves of `takeoff-stream`: the same small image and 50 chunks, two wire formats.
TAKEOFF_STREAM = Scenario(
    "takeoff-stream",
    "Takeoff: multipart image request, 50 raw-text SSE events",
    32,
    True,
    50,
    image_base64_bytes=SMALL_IMAGE_BYTES,
    duration_s=5.0,
    upstream="takeoff",
)
OPENAI_STREAM50 = Scenario(
    "takeoff-stream-openai",
    "OpenAI-compatible: same image, 50 content chunks",
    32,
    True,
    50,
    image_base64_bytes=SMALL_IMAGE_BYTES,
    duration_s=5.0,
)

# The halves of `responses`: the same request and reply through each API of the gateway; the
# mock is asked the same chat request either way.
RESPONSES_SMALL_CHAT = Scenario(
    "responses-small-chat", "chat completions: small non-streamed request", 32, False, 16
)
RESPONSES_SMALL = Scenario(
    "responses-small",
    "Responses API: the same request as input_text and input_image parts",
    32,
    False,
    16,
    api="responses",
)
RESPONSES_STREAM_CHAT = Scenario(
    "responses-stream-chat", "chat completions: 20 chunks streamed back to back", 32, True, 20
)
RESPONSES_STREAM = Scenario(
    "responses-stream",
    "Responses API: the same stream as 20 response.output_text.delta events",
    32,
    True,
    20,
    api="responses",
)


def select(keys: list[str] | None) -> list[Scenario | Special]:
    """The scenarios named in `keys`, in the benchmark's order; without keys, the default run."""
    if not keys:
        return [scenario for scenario in SCENARIOS if scenario.in_default_run]
    known = {scenario.key: scenario for scenario in SCENARIOS}
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    return [scenario for scenario in SCENARIOS if scenario.key in keys]
