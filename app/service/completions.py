"""Serving one chat completion: checks, deadlines, retries and failover, fan-out for `n`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from app.config import GatewayConfig
from app.documents import DocumentPipeline
from app.errors import GatewayError, RateLimited, UpstreamTimeout
from app.images import ImagePipeline, check_image_parts, with_images
from app.observe.metrics import Metrics
from app.observe.record import current_record
from app.providers.base import Call, chunks_from_completion, refuse_unsupported
from app.service.answers import Stamp, merge_choices, replay, stream_of, whole_answer
from app.service.backoff import retryable, wait
from app.service.cache import CacheControl, ResponseCache
from app.service.limits import Cooldowns, Limit, RateLimiter, check_fanout
from app.service.routing import Attempt, Router
from app.service.watchdog import StallWatchdog
from app.wire.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    CompletionUsage,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
# One try at a deployment, given the request's deadline (a `time.monotonic()` value).
Run = Callable[[Attempt, float], Awaitable[T]]
Chunks = AsyncGenerator[ChatCompletionChunk]


class ChatService:
    def __init__(
        self,
        config: GatewayConfig,
        router: Router,
        pipeline: ImagePipeline,
        documents: DocumentPipeline,
        metrics: Metrics,
        limiter: RateLimiter,
        cooldowns: Cooldowns,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        cache: ResponseCache | None = None,
    ) -> None:
        self._config = config
        self._router = router
        self._pipeline = pipeline
        self._documents = documents
        self._metrics = metrics
        self._limiter = limiter
        self._cooldowns = cooldowns
        self._sleep = sleep
        self._cache = cache

    async def complete(
        self,
        request: ChatCompletionRequest,
        key_rate: Limit | None = None,
        cache: CacheControl | None = None,
    ) -> ChatCompletion:
        """The whole answer from the first deployment that gives one (the request's record
        names its provider). `key_rate` is counted with the deployments' limits and cooldowns
        (429 when it is used up); `cache` says whose request it is and what it asks of the
        response cache, for deployments that keep answers."""

        async def run(attempt: Attempt, deadline: float) -> ChatCompletion:
            with attempt.traced():
                call = await self._call(request, attempt, deadline)
                plan = self._cache.plan(call, attempt, cache) if self._cache else None
                if plan is None:
                    return await self._complete_once(call, attempt)
                return await plan.complete(lambda: self._complete_once(call, attempt))

        completion, _ = await self._first_success(request, run, key_rate)
        record = current_record()
        if record.cache == "hit":  # no upstream spent anything on it
            return completion
        record.count_usage(completion.usage.prompt_tokens, completion.usage.completion_tokens)
        extension = (completion.model_extra or {}).get("x_gateway")
        if isinstance(extension, dict):
            record.count_credits(extension.get("credits_used"))
        return completion

    async def stream(
        self,
        request: ChatCompletionRequest,
        key_rate: Limit | None = None,
        cache: CacheControl | None = None,
    ) -> AsyncIterator[ChatCompletionChunk]:
        """A started stream of chunks: its first chunk is already in hand, so failures
        up to there were raised here, as HTTP statuses, and could be retried elsewhere (the
        request's record names the provider that answered)."""

        async def run(attempt: Attempt, deadline: float) -> tuple[ChatCompletionChunk, Chunks]:
            with attempt.traced() as traced:
                call = await self._call(request, attempt, deadline)
                plan = self._cache.plan(call, attempt, cache) if self._cache else None
                if plan is None:
                    chunks = await self._chunks(call, attempt)
                else:
                    chunks = await plan.stream(lambda: self._chunks(call, attempt), request.model)
                try:
                    return await anext(chunks), traced.follow(chunks)
                except BaseException:
                    await chunks.aclose()
                    raise

        (first, chunks), attempt = await self._first_success(request, run, key_rate)
        return self._relay(request, first, chunks, attempt.deployment.entry.timeout_s)

    async def _first_success(
        self, request: ChatCompletionRequest, run: Run[T], key_rate: Limit | None
    ) -> tuple[T, Attempt]:
        """Each deployment in turn, with its retries, until one answers: the group, then its
        fallbacks. The first one's rate was counted with the key's; later ones count theirs
        when their turn comes."""
        last: GatewayError | None = None
        record = current_record()
        attempts, first_refusal = await self._attempts(request, key_rate)
        for index, attempt in enumerate(attempts):
            deployment = attempt.deployment
            record.provider = deployment.entry.provider
            try:
                if index > 0:
                    await self._limiter.check(deployment.rate(request.choice_count))
                elif first_refusal is not None:
                    raise first_refusal
                result = await self._with_retries(attempt, run)
            except GatewayError as exc:
                exc.provider = deployment.entry.provider
                own_limit = isinstance(exc, RateLimited) and not exc.retryable
                if not (exc.retryable or own_limit):
                    raise
                if not own_limit:
                    await self._cooldowns.failed(deployment.id, deployment.entry.cooldown_s)
                    self._failed_over(request, attempt, exc)
                last = exc
            else:
                await self._cooldowns.succeeded(deployment.id)
                return result, attempt
        assert last is not None
        raise last

    async def _with_retries(self, attempt: Attempt, run: Run[T]) -> T:
        entry = attempt.deployment.entry
        deadline = time.monotonic() + entry.timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                try:
                    return await run(attempt, deadline)
                except GatewayError as exc:
                    if not (entry.retries and exc.retryable):
                        raise
                    first_failure = exc
                return await self._retry(attempt, run, deadline, first_failure)
        except TimeoutError:
            raise UpstreamTimeout(
                f"no answer within the model's deadline of {entry.timeout_s:g} s"
            ) from None

    async def _retry(
        self, attempt: Attempt, run: Run[T], deadline: float, failure: GatewayError
    ) -> T:
        """The retries after a first try failed with `failure` (most requests never get here):
        backoff with jitter, or the upstream's `Retry-After`."""
        entry = attempt.deployment.entry
        retrying = AsyncRetrying(
            stop=stop_after_attempt(entry.retries + 1),
            wait=wait,
            retry=retry_if_exception(retryable),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda _: self._metrics.retries.labels(entry.provider).inc(),
        )
        first = True
        async for try_ in retrying:
            with try_:
                if first:
                    first = False
                    raise failure
                return await run(attempt, deadline)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _attempts(
        self, request: ChatCompletionRequest, key_rate: Limit | None
    ) -> tuple[list[Attempt], RateLimited | None]:
        """Deployments that can take this request, resting ones left out unless all rest,
        and whether the first is at its own rate; the key's rate is counted meanwhile."""
        async with self._limiter.key_first(key_rate):
            usable = self._usable(request)
        rates = [attempt.deployment.rate(request.choice_count) for attempt in usable]
        admitted = await self._limiter.admit(key_rate, rates)
        ready = [a for a, rests in zip(usable, admitted.resting, strict=True) if not rests]
        return ready or usable, admitted.first_refusal

    def _usable(self, request: ChatCompletionRequest) -> list[Attempt]:
        """Deployments that can take this request; the first one's refusals are the client's."""
        usable: list[Attempt] = []
        for index, attempt in enumerate(self._router.resolve(request.model)):
            capabilities = attempt.deployment.provider.capabilities
            try:
                refuse_unsupported(request, capabilities)
                check_fanout(
                    request.choice_count, attempt.deployment.entry, native_n=capabilities.native_n
                )
                check_image_parts(request, self._config.images, capabilities.images.max_images)
            except GatewayError:
                if index == 0:
                    raise
                continue
            usable.append(attempt)
        return usable

    async def _call(
        self, request: ChatCompletionRequest, attempt: Attempt, deadline: float
    ) -> Call:
        """The upstream call: documents and images checked and converted to what this
        provider takes (a document's pages are images, unless the upstream reads PDFs)."""
        needs = attempt.deployment.provider.capabilities.images
        max_images = self._config.images.max_images_per_request
        if needs.max_images is not None:
            max_images = min(max_images, needs.max_images)
        request = await self._documents.prepare(
            request, native=attempt.deployment.entry.documents == "native", max_images=max_images
        )
        images = await self._pipeline.prepare(request, needs)
        current_record().image_count = len(images)
        upstream_request, inline = request, request.inline
        if not needs.raw_bytes:  # it reads the image URLs: they carry what it should get
            upstream_request, inline = with_images(request, images)
            images = [image.without_bytes() for image in images]  # the base64 will do
        return Call(
            upstream_request, attempt.upstream_model, images, attempt.variant, deadline, inline
        )

    async def _complete_once(self, call: Call, attempt: Attempt) -> ChatCompletion:
        provider, model = attempt.deployment.provider, call.request.model
        count = call.request.choice_count
        if count == 1 or provider.capabilities.native_n:
            return await whole_answer(provider.execute(call, stream=False), model)
        single = replace(call, request=call.request.model_copy(update={"n": None}))
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(whole_answer(provider.execute(single, stream=False), model))
                    for _ in range(count)
                ]
        except* GatewayError as failures:
            raise failures.exceptions[0] from None
        return merge_choices([task.result() for task in tasks])

    async def _chunks(self, call: Call, attempt: Attempt) -> Chunks:
        """The provider's own stream, or, for `n` it can't do, the merged answers as one."""
        provider, request = attempt.deployment.provider, call.request
        if request.choice_count > 1 and not provider.capabilities.native_n:
            merged = await self._complete_once(call, attempt)
            merged.id, merged.created = Stamp(request.model).id, int(time.time())
            return replay(chunks_from_completion(merged))
        events = provider.execute(call, stream=True)
        return stream_of(events, Stamp(request.model), request.choice_count)

    async def _relay(
        self,
        request: ChatCompletionRequest,
        first: ChatCompletionChunk,
        chunks: Chunks,
        wait_s: float,
    ) -> AsyncGenerator[ChatCompletionChunk]:
        """The chunks to send: usage only when asked for (and always then), each chunk within
        `wait_s` of the one before, so that a stalled upstream ends the stream with
        `upstream_timeout` instead of holding it open."""
        record = current_record()
        include_usage, usage_sent = request.include_usage, False
        try:
            yield first
            stalled = f"the upstream sent nothing for {wait_s:g} s"
            with StallWatchdog(wait_s, lambda: UpstreamTimeout(stalled)) as watch:
                while True:
                    watch.waiting()
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    watch.resumed()
                    if chunk.usage is not None and not chunk.choices:
                        usage = chunk.usage
                        facts = (chunk.model_extra or {}).get("x_gateway")
                        if record.cache != "hit":  # else no upstream spent anything on it
                            record.count_usage(usage.prompt_tokens, usage.completion_tokens)
                            if isinstance(facts, dict):
                                record.count_credits(facts.get("credits_used"))
                        if include_usage:
                            usage_sent = True
                            yield chunk
                        continue
                    if record.first_token_s is None and any(c.delta.content for c in chunk.choices):
                        record.first_token()
                    yield chunk
            if include_usage and not usage_sent:
                yield ChatCompletionChunk(
                    id=first.id,
                    created=first.created,
                    model=first.model,
                    choices=[],
                    usage=CompletionUsage(),
                )
        finally:
            await chunks.aclose()

    def _failed_over(
        self, request: ChatCompletionRequest, attempt: Attempt, error: GatewayError
    ) -> None:
        code = error.code or "unknown"
        logger.warning(
            "model %r: deployment %s failed before the first byte (%s)",
            request.model,
            attempt.deployment.id,
            code,
        )
        self._metrics.upstream_errors.labels(attempt.deployment.entry.provider, code).inc()
        self._metrics.failovers.labels(self._router.label(request.model)).inc()
