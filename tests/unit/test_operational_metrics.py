"""Counters operators read: job polls, and image bytes fetched or produced by conversion."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from app.config import ImagesConfig
from app.images import ImageNeeds, ImagePipeline
from app.images.cache import ImageCache
from app.images.fetch import ImageFetcher
from app.observe.metrics import Metrics
from app.providers.base import Call, Capabilities
from app.providers.jobs import JobProvider, JobState
from app.wire.schemas import ChatCompletion, ChatCompletionMessage, Choice
from tests.unit.conftest import chat_request
from tests.unit.seam import answer
from tests.unit.test_images import image_uri, request_with

pytestmark = pytest.mark.anyio


@dataclass
class Countdown:
    polls_left: int


class CountdownJobs(JobProvider[Countdown]):
    """A job that is done after a given number of polls."""

    name = "countdown"
    capabilities = Capabilities(jobs=True)

    def __init__(self, polls: int, metrics: Metrics) -> None:
        self.polls = polls
        self.metrics = metrics
        self.poll_interval_s = 0.001

    async def submit(self, call: Call) -> tuple[Countdown, JobState | None]:  # noqa: ARG002
        return Countdown(self.polls), None

    async def check(self, job: Countdown) -> JobState:
        job.polls_left -= 1
        return JobState("succeeded" if job.polls_left == 0 else "running", output="done")

    def to_completion(
        self,
        call: Call,
        job: Countdown,  # noqa: ARG002
        state: JobState,
    ) -> ChatCompletion:
        message = ChatCompletionMessage(content=str(state.output))
        return ChatCompletion(model=call.request.model, choices=[Choice(message=message)])


async def test_every_job_poll_is_counted() -> None:
    metrics = Metrics()
    jobs = CountdownJobs(polls=3, metrics=metrics)

    await answer(jobs, Call(chat_request(), "upstream", deadline=time.monotonic() + 5))

    assert (
        metrics.registry.get_sample_value("gateway_job_polls_total", {"provider": "countdown"}) == 3
    )


async def test_converted_image_bytes_are_counted() -> None:
    metrics = Metrics()
    fetcher = ImageFetcher(timeout_s=1, max_bytes=1_000_000, allow_private_networks=False)
    pipeline = ImagePipeline(ImagesConfig(), fetcher, ImageCache(), metrics)
    try:
        [image] = await pipeline.prepare(request_with(image_uri("BMP", "image/bmp")), ImageNeeds())
    finally:
        await fetcher.aclose()

    assert image.image is not None
    assert image.image.mime == "image/png"
    counted = metrics.registry.get_sample_value("gateway_image_bytes_total", {"kind": "converted"})
    assert counted == len(image.image.data)
