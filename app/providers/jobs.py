"""Upstreams that answer with a job to poll: one polling loop, and a base for such providers."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar, assert_never

from app.errors import UpstreamError, UpstreamJobFailed, UpstreamRejected, UpstreamTimeout
from app.observe import tracing
from app.observe.metrics import Metrics
from app.observe.record import upstream_wait
from app.providers.base import ACCEPTED, Call, Event, Translator
from app.providers.upstream import MalformedReply
from app.wire.schemas import ChatCompletion

logger = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "succeeded", "failed"]

# Polls answered with a malformed reply before the job is given up: the first, and two more in
# case something between the gateway and the upstream garbled one.
MALFORMED_POLLS = 3
# What job ids look like (Masterpiece X's, VLM Run's): one path segment, nothing to escape.
_JOB_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,127}")


class MalformedJobReply(MalformedReply):
    """A job's polls kept answering what the gateway can't read. Not tried again on another
    attempt: that would start the job, and spend the upstream's credits, a second time."""

    @property
    def retryable(self) -> bool:
        return False


def job_id(value: object, provider: str) -> str:
    """A job id from an upstream's reply, checked before it goes into the path of a poll: one
    segment of letters, digits and `_.:-`, not starting with a dot, at most 128 characters."""
    if not isinstance(value, str) or not _JOB_ID.fullmatch(value):
        raise MalformedJobReply(f"the {provider} upstream gave a job id that is not one")
    return value


@dataclass(frozen=True)
class JobState:
    """One look at a job. `poll_after_s` is the upstream's hint for the next look, if any."""

    status: JobStatus
    output: object = None
    error: str | None = None
    poll_after_s: float | None = None
    raw: dict[str, object] | None = None


async def wait_for_job(
    check: Callable[[], Awaitable[JobState]],
    *,
    interval_s: float,
    deadline: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = random.random,
    first: JobState | None = None,
) -> JobState:
    """Poll `check` until the job succeeds; raise on failure or at `deadline` (a `clock()`
    value: the request's own deadline).

    Polls are `interval_s` apart (or the upstream's hint), the first one spread over one
    interval so that jobs started together don't poll together. A poll that fails with a
    retryable upstream error is tried again at the next turn; malformed replies are, up to
    `MALFORMED_POLLS` of them. Cancellation (a client that went away) stops the loop at once,
    wherever it waits.
    """
    timeout_s = deadline - clock()
    state = first
    malformed = 0
    delay = interval_s * (0.5 + jitter())
    while True:
        if state is not None:
            match state.status:
                case "succeeded":
                    return state
                case "failed":
                    reason = f": {state.error}" if state.error else ""
                    raise UpstreamJobFailed(f"the upstream job failed{reason}")
                case "queued" | "running":
                    delay = state.poll_after_s or delay
                case _:
                    assert_never(state.status)
        remaining = deadline - clock()
        if remaining <= 0:
            raise UpstreamTimeout(f"the upstream job did not finish within {timeout_s:.3g} s")
        await sleep(min(delay, remaining))
        delay = interval_s
        if clock() >= deadline:
            raise UpstreamTimeout(f"the upstream job did not finish within {timeout_s:.3g} s")
        try:
            state = await check()
        except MalformedReply as exc:
            malformed += 1
            if malformed >= MALFORMED_POLLS:
                raise MalformedJobReply(exc.message) from None
            logger.info("job poll got a malformed reply; trying again")
            state = None
        except UpstreamError as exc:
            if not exc.retryable:
                raise
            logger.info("job poll failed (%s); trying again", exc.code)
            state = None


async def _sleep_on_upstream(seconds: float) -> None:
    """Waiting between polls is the upstream's time, not the gateway's overhead."""
    with upstream_wait():
        await asyncio.sleep(seconds)


JobT = TypeVar("JobT")


class JobProvider(Translator, Generic[JobT]):
    """A provider whose upstream runs jobs. Subclasses write `submit`, `check` and
    `to_completion`; answering and streaming are done here, once."""

    name: str
    poll_interval_s: float
    metrics: Metrics

    async def submit(self, call: Call) -> tuple[JobT, JobState | None]:
        """Start the job; the upstream's first answer, when it says something, comes along."""
        raise NotImplementedError

    async def check(self, job: JobT) -> JobState:
        raise NotImplementedError

    def to_completion(self, call: Call, job: JobT, state: JobState) -> ChatCompletion:
        raise NotImplementedError

    async def _check(self, job: JobT) -> JobState:
        self.metrics.job_polls.labels(self.name).inc()
        with tracing.step("job poll", self.name) as traced:
            try:
                state = await self.check(job)
            except UpstreamRejected as exc:  # a 4xx about a job we started: it is gone
                raise UpstreamJobFailed(f"the upstream lost the job: {exc.message}") from None
            traced.set("vision_gateway.job.status", state.status)
            return state

    async def execute(self, call: Call, *, stream: bool) -> AsyncGenerator[Event]:  # noqa: ARG002
        """Accepted as soon as the job is submitted (a stream starts and keeps alive), then
        the answer once the job is done."""
        with tracing.step("job submit", self.name):
            job, first = await self.submit(call)
        yield ACCEPTED
        state = await wait_for_job(
            lambda: self._check(job),
            interval_s=self.poll_interval_s,
            deadline=call.deadline,
            sleep=_sleep_on_upstream,
            first=first,
        )
        yield self.to_completion(call, job, state)
