"""Serving one chat completion: checks, deadlines, failover across deployments, fan-out for `n`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace

from app.config import GatewayConfig
from app.errors import GatewayError, UpstreamTimeout
from app.images import ImagePipeline, check_image_parts, with_images
from app.metrics import Metrics
from app.providers.base import Call, chunks_from_completion, refuse_unsupported
from app.routing import Attempt, Router
from app.schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, CompletionUsage
from app.sse import encode_event

logger = logging.getLogger(__name__)


class ChatService:
    def __init__(
        self, config: GatewayConfig, router: Router, pipeline: ImagePipeline, metrics: Metrics
    ) -> None:
        self._config = config
        self._router = router
        self._pipeline = pipeline
        self._metrics = metrics

    def _attempts(self, request: ChatCompletionRequest) -> list[Attempt]:
        """Deployments that can take this request; the first one's refusals are the client's."""
        attempts = []
        for index, attempt in enumerate(self._router.resolve(request.model)):
            capabilities = attempt.deployment.provider.capabilities
            try:
                refuse_unsupported(request, capabilities)
                check_image_parts(request, self._config.images, capabilities.images.max_images)
            except GatewayError:
                if index == 0:
                    raise
                continue
            attempts.append(attempt)
        return attempts

    async def complete(self, request: ChatCompletionRequest) -> tuple[ChatCompletion, str]:
        """The whole answer from the first deployment that gives one."""
        last: GatewayError | None = None
        for attempt in self._attempts(request):
            deadline = attempt.deployment.entry.timeout_s
            try:
                async with asyncio.timeout(deadline):
                    completion = await self._complete_once(
                        await self._call(request, attempt), attempt
                    )
                return completion, attempt.deployment.entry.provider
            except TimeoutError:
                last = UpstreamTimeout(f"no answer within the model's deadline of {deadline:g} s")
            except GatewayError as exc:
                if not exc.retryable:
                    raise
                last = exc
            self._failed_over(request, attempt, last)
        assert last is not None
        raise last

    async def _call(self, request: ChatCompletionRequest, attempt: Attempt) -> Call:
        """The upstream call: images checked and converted to what this provider takes."""
        needs = attempt.deployment.provider.capabilities.images
        images = await self._pipeline.prepare(request, needs)
        return Call(with_images(request, images), attempt.upstream_model, images, attempt.variant)

    async def _complete_once(self, call: Call, attempt: Attempt) -> ChatCompletion:
        provider = attempt.deployment.provider
        count = call.request.choice_count
        if count == 1 or provider.capabilities.native_n:
            return await provider.complete(call)
        single = replace(call, request=call.request.model_copy(update={"n": None}))
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(provider.complete(single)) for _ in range(count)]
        return merge_choices([task.result() for task in tasks])

    async def stream(self, request: ChatCompletionRequest) -> tuple[AsyncIterator[bytes], str]:
        """A started stream of encoded chunks: its first chunk is already in hand, so failures
        up to there were raised here, as HTTP statuses, and could fail over."""
        last: GatewayError | None = None
        for attempt in self._attempts(request):
            chunks = self._chunks(request, attempt)
            deadline = attempt.deployment.entry.timeout_s
            try:
                async with asyncio.timeout(deadline):
                    first = await anext(chunks)
            except TimeoutError:
                last = UpstreamTimeout(f"no answer within the model's deadline of {deadline:g} s")
            except GatewayError as exc:
                if not exc.retryable:
                    await chunks.aclose()
                    raise
                last = exc
            else:
                provider = attempt.deployment.entry.provider
                return self._encode(request, provider, first, chunks), provider
            await chunks.aclose()
            self._failed_over(request, attempt, last)
        assert last is not None
        raise last

    async def _chunks(
        self, request: ChatCompletionRequest, attempt: Attempt
    ) -> AsyncGenerator[ChatCompletionChunk]:
        provider = attempt.deployment.provider
        call = await self._call(request, attempt)
        if request.choice_count > 1 and not provider.capabilities.native_n:
            for chunk in chunks_from_completion(await self._complete_once(call, attempt)):
                yield chunk
            return
        async for chunk in provider.stream(call):
            yield chunk

    async def _encode(
        self,
        request: ChatCompletionRequest,
        provider: str,
        first: ChatCompletionChunk,
        chunks: AsyncGenerator[ChatCompletionChunk],
    ) -> AsyncIterator[bytes]:
        """Chunks as SSE events; usage only when asked for, and always when asked for."""
        started = time.perf_counter()
        include_usage, usage_sent, first_token = request.include_usage, False, False
        try:
            yield encode_event(first)
            async for chunk in chunks:
                if chunk.usage is not None and not chunk.choices:
                    if include_usage:
                        usage_sent = True
                        yield encode_event(chunk)
                    continue
                if not first_token and any(c.delta.content for c in chunk.choices):
                    first_token = True
                    self._metrics.first_token.labels(request.model, provider).observe(
                        time.perf_counter() - started
                    )
                yield encode_event(chunk)
            if include_usage and not usage_sent:
                yield encode_event(
                    ChatCompletionChunk(
                        id=first.id,
                        created=first.created,
                        model=first.model,
                        choices=[],
                        usage=CompletionUsage(),
                    )
                )
        finally:
            await chunks.aclose()

    def _failed_over(
        self, request: ChatCompletionRequest, attempt: Attempt, error: GatewayError | None
    ) -> None:
        code = error.code if error else "unknown"
        logger.warning(
            "model %r: deployment %s failed before the first byte (%s); trying the next",
            request.model,
            attempt.deployment.entry.provider,
            code,
        )
        self._metrics.upstream_errors.labels(attempt.deployment.entry.provider, code).inc()
        self._metrics.failovers.labels(request.model).inc()


def merge_choices(completions: list[ChatCompletion]) -> ChatCompletion:
    """Parallel single answers as one completion with choices indexed 0..n-1."""
    merged = completions[0].model_copy(deep=True)
    merged.choices = []
    usage = CompletionUsage()
    for index, completion in enumerate(completions):
        choice = completion.choices[0].model_copy(update={"index": index})
        merged.choices.append(choice)
        usage.prompt_tokens += completion.usage.prompt_tokens
        usage.completion_tokens += completion.usage.completion_tokens
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
    merged.usage = usage
    return merged
