"""The benchmark's scenarios: what each one sends, how many at once, and what a reply looks like."""

from __future__ import annotations

from dataclasses import dataclass

from bench.payloads import IMAGE_URL, MODEL_PREFIX, chat_body, model_name, png_data_uri

CHAT_PATH = "/v1/chat/completions"


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
    duration_s: float | None = None  # None: the run's --duration

    @property
    def upstream_model(self) -> str:
        return model_name(self.chunks, self.delay_ms)

    def body(self, *, through_gateway: bool) -> bytes:
        """The request body; the gateway's differs only in the model's `mock/` prefix."""
        prefix = MODEL_PREFIX if through_gateway else ""
        image = png_data_uri(self.image_base64_bytes) if self.image_base64_bytes else IMAGE_URL
        return chat_body(prefix + self.upstream_model, image_url=image, stream=self.stream)


SCENARIOS: tuple[Scenario, ...] = (
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
    ),
)


def select(keys: list[str] | None) -> list[Scenario]:
    """The scenarios named in `keys`, in the benchmark's order; all of them for None."""
    if not keys:
        return list(SCENARIOS)
    known = {scenario.key: scenario for scenario in SCENARIOS}
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    return [scenario for scenario in SCENARIOS if scenario.key in keys]
