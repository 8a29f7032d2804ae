"""The chat service with fake providers: failover, deadlines, fan-out for `n`, stream framing."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from typing import Any

import anyio
import orjson
import pytest

from app.config import ModelEntry
from app.documents import DocumentPipeline
from app.errors import (
    GatewayError,
    InvalidRequest,
    RateLimited,
    TooManyImages,
    UnsupportedParameter,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamJobFailed,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.images import ImageNeeds, ImagePipeline
from app.observe.metrics import Metrics
from app.observe.record import RequestRecord, open_record
from app.providers import PROVIDER_KINDS
from app.providers.base import (
    ACCEPTED,
    Call,
    Capabilities,
    Event,
    Provider,
    ProviderContext,
    role_chunk,
)
from app.service.completions import ChatService
from app.service.limits import Cooldowns, RateLimiter
from app.service.routing import Router
from app.state import MemoryState
from app.wire.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionRequest,
    Choice,
    ChoiceDelta,
    ChunkChoice,
    CompletionUsage,
)
from app.wire.sse import encode_event
from tests.conftest import make_config
from tests.unit.conftest import chat_request

pytestmark = pytest.mark.anyio

PLAIN = Capabilities(needs_api_key=False)

# A stream step: a chunk to yield, an exception to raise, or seconds to stall.
Step = ChatCompletionChunk | Exception | float


def chunk(content: str | None = None, finish: str | None = None) -> ChatCompletionChunk:
    choice = ChunkChoice(delta=ChoiceDelta(content=content), finish_reason=finish)
    return ChatCompletionChunk(id="chatcmpl-up", created=1, model="m", choices=[choice])


def usage_chunk(prompt: int, completion: int) -> ChatCompletionChunk:
    usage = CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )
    return ChatCompletionChunk(id="chatcmpl-up", created=1, model="m", choices=[], usage=usage)


class FakeUpstream:
    """A provider that answers, fails or stalls as told, and records what it was asked."""

    def __init__(
        self,
        answer: str = "fine",
        *,
        failures: list[GatewayError] | None = None,
        delay: float = 0.0,
        steps: list[Step] | None = None,
        capabilities: Capabilities = PLAIN,
    ) -> None:
        self.answer = answer
        self.failures = list(failures or [])
        self.delay = delay
        self.steps = steps
        self.capabilities = capabilities
        self.calls: list[Call] = []
        self.closed = anyio.Event()

    async def complete(self, call: Call) -> ChatCompletion:
        self.calls.append(call)
        number = len(self.calls)
        if self.delay:
            await anyio.sleep(self.delay)
        if self.failures:
            raise self.failures.pop(0)
        return ChatCompletion(
            model=call.request.model,
            choices=[Choice(message=ChatCompletionMessage(content=f"{self.answer} {number}"))],
            usage=CompletionUsage(prompt_tokens=3, completion_tokens=2, total_tokens=5),
        )

    async def execute(self, call: Call, *, stream: bool) -> AsyncGenerator[Event]:
        """The one door: the whole answer, or the scripted steps with the upstream's role
        chunk standing for its acceptance."""
        if not stream:
            yield await self.complete(call)
            return
        async for step in self.stream(call):
            is_role = any(choice.delta.role for choice in step.choices)
            yield ACCEPTED if is_role else step

    async def list_models(self) -> list[str]:
        return []

    async def stream(self, call: Call) -> AsyncGenerator[ChatCompletionChunk]:
        self.calls.append(call)
        steps = self.steps
        if steps is None:
            steps = [role_chunk(call.request.model), chunk(self.answer), chunk(finish="stop")]
        try:
            for step in steps:
                if isinstance(step, Exception):
                    raise step
                if isinstance(step, float):
                    await anyio.sleep(step)
                    continue
                yield step
        finally:
            self.closed.set()


class Deployments:
    """Stands in for the `openai` provider kind: each entry gets the fake named by its base_url."""

    capabilities = PLAIN

    def __init__(self, upstreams: dict[str, FakeUpstream]) -> None:
        self.upstreams = upstreams

    def __call__(self, entry: ModelEntry, context: ProviderContext) -> Provider:  # noqa: ARG002
        assert entry.base_url is not None
        return self.upstreams[entry.base_url]


class Gateway:
    """A chat service over fake deployments; it records its backoff sleeps instead of sleeping."""

    def __init__(
        self,
        upstreams: dict[str, FakeUpstream],
        models: list[dict[str, Any]],
        *,
        context: ProviderContext,
        pipeline: ImagePipeline,
        documents: DocumentPipeline,
    ) -> None:
        config = make_config(models)
        # A second kind, so that a record can tell which provider answered.
        kinds = {
            **PROVIDER_KINDS,
            "openai": Deployments(upstreams),
            "takeoff": Deployments(upstreams),
        }
        state = MemoryState()
        self.metrics = Metrics()
        self.sleeps: list[float] = []
        self.service = ChatService(
            config,
            Router(config, context, kinds),
            pipeline,
            documents,
            self.metrics,
            RateLimiter(state),
            Cooldowns(state),
            sleep=self.sleep,
        )

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def failovers(self, model: str = "m") -> float:
        value = self.metrics.registry.get_sample_value("gateway_failovers_total", {"model": model})
        return value or 0.0


@pytest.fixture
def gateway(
    provider_context: ProviderContext,
    image_pipeline: ImagePipeline,
    document_pipeline: DocumentPipeline,
) -> Any:
    """Builds a Gateway: `gateway(a=FakeUpstream(), b=...)` is one model "m" with two entries,
    each tried once unless `retries` says otherwise."""

    def build(
        models: list[dict[str, Any]] | None = None,
        timeout_s: float = 5,
        retries: int = 0,
        **upstreams: FakeUpstream,
    ) -> Gateway:
        if models is None:
            models = [
                {"name": "m", "provider": "openai", "base_url": host, "timeout_s": timeout_s}
                for host in upstreams
            ]
        for model in models:
            model.setdefault("retries", retries)
        return Gateway(
            upstreams,
            models,
            context=provider_context,
            pipeline=image_pipeline,
            documents=document_pipeline,
        )

    return build


def content_of(completion: ChatCompletion) -> list[str]:
    return [choice.message.content or "" for choice in completion.choices]


async def test_answer_comes_from_the_first_deployment(gateway: Any) -> None:
    a = FakeUpstream("from a")
    gw = gateway(a=a, b=FakeUpstream("from b"))

    record = open_record(RequestRecord())

    completion = await gw.service.complete(chat_request())

    assert content_of(completion) == ["from a 1"]
    assert record.provider == "openai"
    [call] = a.calls
    assert call.upstream_model == "m"
    assert call.request.model == "m"
    assert gw.failovers() == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_the_record_names_the_provider_that_answered(gateway: Any, stream: bool) -> None:
    models = [
        {"name": "m", "provider": "openai", "base_url": "a"},
        {"name": "m", "provider": "takeoff", "base_url": "b"},
    ]
    failing = FakeUpstream(failures=[UpstreamError("502")], steps=[UpstreamError("502")])
    gw = gateway(models, a=failing, b=FakeUpstream("b"))
    record = open_record(RequestRecord())

    if stream:
        await read(await gw.service.stream(streamed(chat_request())))
    else:
        await gw.service.complete(chat_request())

    assert record.provider == "takeoff"


@pytest.mark.parametrize(
    "failure",
    [
        UpstreamError("502"),
        UpstreamUnavailable("refused"),
        UpstreamTimeout("slow"),
        UpstreamRateLimited("busy"),
    ],
)
async def test_retryable_failures_move_on_to_the_next_deployment(
    gateway: Any, failure: GatewayError
) -> None:
    a, b = FakeUpstream(failures=[failure]), FakeUpstream("from b")
    gw = gateway(a=a, b=b)

    completion = await gw.service.complete(chat_request())

    assert content_of(completion) == ["from b 1"]
    assert (len(a.calls), len(b.calls)) == (1, 1)
    assert gw.failovers() == 1


@pytest.mark.parametrize(
    "failure",
    [
        UpstreamRejected("bad request"),
        UpstreamAuthFailed("our key"),
        UpstreamJobFailed("job failed"),
        InvalidRequest("no"),
    ],
)
async def test_other_failures_are_raised_at_once(gateway: Any, failure: GatewayError) -> None:
    a, b = FakeUpstream(failures=[failure]), FakeUpstream()
    gw = gateway(a=a, b=b)

    with pytest.raises(type(failure)) as caught:
        await gw.service.complete(chat_request())

    assert caught.value is failure
    assert b.calls == []


async def test_when_every_deployment_fails_the_last_failure_is_raised(gateway: Any) -> None:
    last = UpstreamUnavailable("b is down")
    gw = gateway(a=FakeUpstream(failures=[UpstreamError("a")]), b=FakeUpstream(failures=[last]))

    with pytest.raises(UpstreamUnavailable) as caught:
        await gw.service.complete(chat_request())

    assert caught.value is last
    assert gw.failovers() == 2


async def test_retryable_failures_are_retried_on_the_same_deployment_first(
    gateway: Any,
) -> None:
    a, b = FakeUpstream("from a", failures=[UpstreamError("blip")]), FakeUpstream("from b")
    gw = gateway(retries=1, a=a, b=b)

    completion = await gw.service.complete(chat_request())

    assert content_of(completion) == ["from a 2"]
    assert b.calls == []
    assert len(gw.sleeps) == 1
    assert 0 <= gw.sleeps[0] <= 4
    assert gw.failovers() == 0


async def test_a_deployment_out_of_retries_fails_over(gateway: Any) -> None:
    a = FakeUpstream(failures=[UpstreamError("1"), UpstreamError("2"), UpstreamError("3")])
    b = FakeUpstream("from b")
    gw = gateway(retries=2, a=a, b=b)

    completion = await gw.service.complete(chat_request())

    assert content_of(completion) == ["from b 1"]
    assert len(a.calls) == 3
    assert gw.failovers() == 1


@pytest.mark.parametrize(("retry_after", "slept"), [("7", 7.0), ("0.5", 0.5), ("3600", 30.0)])
async def test_retries_wait_as_long_as_the_upstream_asks_within_reason(
    gateway: Any, retry_after: str, slept: float
) -> None:
    busy = UpstreamRateLimited("busy", headers={"Retry-After": retry_after})
    gw = gateway(retries=1, a=FakeUpstream(failures=[busy]))

    await gw.service.complete(chat_request())

    assert gw.sleeps == [slept]


async def test_non_retryable_failures_are_not_retried(gateway: Any) -> None:
    a = FakeUpstream(failures=[UpstreamRejected("no")])
    gw = gateway(retries=3, a=a)

    with pytest.raises(UpstreamRejected):
        await gw.service.complete(chat_request())

    assert len(a.calls) == 1
    assert gw.sleeps == []


async def test_deployment_over_its_rpm_hands_over_to_the_fallback(gateway: Any) -> None:
    a, backup = FakeUpstream("from a"), FakeUpstream("from backup")
    gw = gateway(
        models=[
            {"name": "m", "provider": "openai", "base_url": "a", "rpm": 1, "fallbacks": ["b"]},
            {"name": "b", "provider": "openai", "base_url": "backup"},
        ],
        a=a,
        backup=backup,
    )

    first = await gw.service.complete(chat_request())
    second = await gw.service.complete(chat_request())

    assert content_of(first) == ["from a 1"]
    assert content_of(second) == ["from backup 1"]


async def test_rate_limit_with_nowhere_to_go_is_a_429_with_retry_after(gateway: Any) -> None:
    gw = gateway(
        models=[{"name": "m", "provider": "openai", "base_url": "a", "rpm": 1}], a=FakeUpstream()
    )
    await gw.service.complete(chat_request())

    with pytest.raises(RateLimited) as caught:
        await gw.service.complete(chat_request())

    assert caught.value.status_code == 429
    assert int(caught.value.headers["Retry-After"]) >= 1


async def test_fallbacks_are_tried_after_the_group(gateway: Any) -> None:
    a, backup = FakeUpstream(failures=[UpstreamError("a")]), FakeUpstream("from backup")
    gw = gateway(
        models=[
            {"name": "m", "provider": "openai", "base_url": "a", "fallbacks": ["backup"]},
            {"name": "backup", "provider": "openai", "base_url": "backup"},
        ],
        a=a,
        backup=backup,
    )

    completion = await gw.service.complete(chat_request())

    assert content_of(completion) == ["from backup 1"]
    assert completion.model == "m"
    assert backup.calls[0].upstream_model == "backup"


async def test_deadline_is_an_upstream_timeout(gateway: Any) -> None:
    gw = gateway(timeout_s=0.05, a=FakeUpstream(delay=5))

    with anyio.fail_after(2):
        with pytest.raises(UpstreamTimeout, match=r"deadline of 0\.05 s") as caught:
            await gw.service.complete(chat_request())

    assert caught.value.status_code == 504


async def test_a_deployment_past_its_deadline_fails_over(gateway: Any) -> None:
    gw = gateway(timeout_s=0.05, a=FakeUpstream(delay=5), b=FakeUpstream("from b"))

    with anyio.fail_after(2):
        completion = await gw.service.complete(chat_request())

    assert content_of(completion) == ["from b 1"]


async def test_n_is_fanned_out_for_providers_without_native_n(gateway: Any) -> None:
    a = FakeUpstream("answer")
    gw = gateway(a=a)

    completion = await gw.service.complete(chat_request(n=3))

    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert sorted(content_of(completion)) == ["answer 1", "answer 2", "answer 3"]
    assert completion.usage == CompletionUsage(
        prompt_tokens=9, completion_tokens=6, total_tokens=15
    )
    # One call made three times: what the provider builds for it is built once.
    assert len({id(call) for call in a.calls}) == 1
    assert [call.request.choice_count for call in a.calls] == [1, 1, 1]


async def test_n_goes_to_providers_with_native_n_in_one_call(gateway: Any) -> None:
    a = FakeUpstream(capabilities=Capabilities(needs_api_key=False, native_n=True))
    gw = gateway(a=a)

    await gw.service.complete(chat_request(n=3))

    assert [call.request.n for call in a.calls] == [3]


async def test_a_failed_fan_out_call_is_an_upstream_error(gateway: Any) -> None:
    gw = gateway(a=FakeUpstream(failures=[UpstreamError("one of three failed")]))

    with pytest.raises(UpstreamError, match="one of three failed"):
        await gw.service.complete(chat_request(n=3))


async def test_a_failed_fan_out_fails_over_to_the_next_deployment(gateway: Any) -> None:
    gw = gateway(a=FakeUpstream(failures=[UpstreamError("a")]), b=FakeUpstream("from b"))

    completion = await gw.service.complete(chat_request(n=3))

    assert sorted(content_of(completion)) == ["from b 1", "from b 2", "from b 3"]


async def test_unsupported_fields_are_refused_before_any_call(gateway: Any) -> None:
    a = FakeUpstream()
    gw = gateway(a=a)

    with pytest.raises(UnsupportedParameter) as caught:
        await gw.service.complete(chat_request(tools=[{"type": "function"}]))

    assert caught.value.param == "tools"
    assert a.calls == []


async def test_later_deployments_that_cannot_take_the_request_are_skipped(
    gateway: Any,
) -> None:
    able = Capabilities(needs_api_key=False, answer_fields=frozenset({"tools"}))
    a, b = FakeUpstream(failures=[UpstreamError("a")], capabilities=able), FakeUpstream()
    gw = gateway(a=a, b=b)

    with pytest.raises(UpstreamError, match="a"):
        await gw.service.complete(chat_request(tools=[{"type": "function"}]))

    assert b.calls == []


async def test_more_images_than_the_provider_takes_is_refused(gateway: Any) -> None:
    one_image = Capabilities(needs_api_key=False, images=ImageNeeds(max_images=1))
    a = FakeUpstream(capabilities=one_image)
    gw = gateway(a=a)
    image = {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}

    with pytest.raises(TooManyImages) as caught:
        await gw.service.complete(chat_request([image, image]))

    assert caught.value.param == "messages[0].content[1].image_url"
    assert a.calls == []


async def read(events: AsyncIterator[ChatCompletionChunk]) -> list[dict[str, Any]]:
    """The chunks as a client would parse them off the wire."""
    return [orjson.loads(encode_event(event)[len(b"data: ") :]) async for event in events]


async def drain(
    events: AsyncIterator[ChatCompletionChunk], into: list[ChatCompletionChunk]
) -> None:
    async for event in events:
        into.append(event)


def streamed(request: ChatCompletionRequest) -> ChatCompletionRequest:
    return request.model_copy(update={"stream": True})


async def test_stream_relays_the_chunks_in_order(gateway: Any) -> None:
    gw = gateway(a=FakeUpstream("hello"))

    record = open_record(RequestRecord())

    events = await gw.service.stream(streamed(chat_request()))
    payloads = await read(events)

    assert record.provider == "openai"
    assert [p["choices"][0]["delta"].get("role") for p in payloads] == ["assistant", None, None]
    assert [p["choices"][0]["delta"].get("content") for p in payloads] == ["", "hello", None]
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"


async def test_usage_chunk_is_dropped_unless_asked_for(gateway: Any) -> None:
    steps: list[Step] = [role_chunk("m"), chunk("hi"), chunk(finish="stop"), usage_chunk(4, 1)]
    gw = gateway(a=FakeUpstream(steps=steps))

    events = await gw.service.stream(streamed(chat_request()))
    payloads = await read(events)

    assert all(p["choices"] for p in payloads)
    assert all(p.get("usage") is None for p in payloads)


async def test_usage_chunk_is_relayed_when_asked_for(gateway: Any) -> None:
    steps: list[Step] = [role_chunk("m"), chunk("hi"), chunk(finish="stop"), usage_chunk(4, 1)]
    gw = gateway(a=FakeUpstream(steps=steps))
    request = streamed(chat_request(stream_options={"include_usage": True}))

    events = await gw.service.stream(request)
    payloads = await read(events)

    assert payloads[-1]["choices"] == []
    assert payloads[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}
    assert sum(1 for p in payloads if p.get("usage")) == 1


async def test_usage_chunk_of_zeros_is_added_when_asked_for_and_missing(gateway: Any) -> None:
    gw = gateway(a=FakeUpstream())
    request = streamed(chat_request(stream_options={"include_usage": True}))

    events = await gw.service.stream(request)
    payloads = await read(events)

    assert payloads[-1]["choices"] == []
    assert payloads[-1]["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert payloads[-1]["id"] == payloads[0]["id"]


async def test_first_chunk_is_pulled_before_the_stream_is_returned(gateway: Any) -> None:
    pulled: list[str] = []

    class Watched(FakeUpstream):
        async def stream(self, call: Call) -> AsyncGenerator[ChatCompletionChunk]:
            async for item in super().stream(call):
                pulled.append(item.choices[0].delta.content or "")
                yield item

    gw = gateway(a=Watched("later"))

    events = await gw.service.stream(streamed(chat_request()))

    assert pulled == [""]
    await read(events)
    assert pulled == ["", "later", ""]


@pytest.mark.parametrize("failure", [UpstreamRejected("no"), UpstreamAuthFailed("key")])
async def test_errors_before_the_first_chunk_are_raised_by_stream(
    gateway: Any, failure: GatewayError
) -> None:
    a, b = FakeUpstream(steps=[failure]), FakeUpstream()
    gw = gateway(a=a, b=b)

    with pytest.raises(type(failure)):
        await gw.service.stream(streamed(chat_request()))

    assert b.calls == []
    assert a.closed.is_set()


async def test_retryable_errors_before_the_first_chunk_fail_over(gateway: Any) -> None:
    a, b = FakeUpstream(steps=[UpstreamUnavailable("down")]), FakeUpstream("from b")
    gw = gateway(a=a, b=b)

    events = await gw.service.stream(streamed(chat_request()))
    payloads = await read(events)

    assert payloads[1]["choices"][0]["delta"]["content"] == "from b"
    assert a.closed.is_set()
    assert gw.failovers() == 1


async def test_stream_deadline_before_the_first_chunk_fails_over(gateway: Any) -> None:
    a, b = FakeUpstream(steps=[5.0]), FakeUpstream("from b")
    gw = gateway(timeout_s=0.05, a=a, b=b)

    with anyio.fail_after(2):
        events = await gw.service.stream(streamed(chat_request()))

    assert (await read(events))[1]["choices"][0]["delta"]["content"] == "from b"


async def test_stream_deadline_before_the_first_chunk_is_an_upstream_timeout(
    gateway: Any,
) -> None:
    gw = gateway(timeout_s=0.05, a=FakeUpstream(steps=[5.0]))

    with anyio.fail_after(2), pytest.raises(UpstreamTimeout):
        await gw.service.stream(streamed(chat_request()))


async def test_errors_after_the_first_chunk_surface_while_reading(gateway: Any) -> None:
    steps: list[Step] = [role_chunk("m"), chunk("partial"), UpstreamError("broke off")]
    gw = gateway(a=FakeUpstream(steps=steps), b=FakeUpstream())

    events = await gw.service.stream(streamed(chat_request()))
    received: list[ChatCompletionChunk] = []
    with pytest.raises(UpstreamError, match="broke off"):
        await drain(events, received)

    assert len(received) == 2


async def test_the_deadline_covers_the_whole_stream(gateway: Any) -> None:
    steps: list[Step] = [role_chunk("m"), 0.3, chunk("late"), chunk(finish="stop")]
    gw = gateway(timeout_s=0.05, a=FakeUpstream(steps=steps))

    events = await gw.service.stream(streamed(chat_request()))

    with anyio.fail_after(2), pytest.raises(UpstreamTimeout):
        await read(events)


async def test_closing_the_stream_closes_the_upstream(gateway: Any) -> None:
    a = FakeUpstream(steps=[role_chunk("m"), chunk("one"), chunk("two"), chunk(finish="stop")])
    gw = gateway(a=a)

    events = await gw.service.stream(streamed(chat_request()))
    assert isinstance(events, AsyncGenerator)
    await anext(events)
    await events.aclose()

    with anyio.fail_after(1):
        await a.closed.wait()


async def test_streamed_n_is_fanned_out_as_one_stream(gateway: Any) -> None:
    a = FakeUpstream("answer")
    gw = gateway(a=a)

    events = await gw.service.stream(streamed(chat_request(n=3)))
    payloads = await read(events)

    assert [c["index"] for c in payloads[0]["choices"]] == [0, 1, 2]
    contents = {
        c["index"]: c["delta"]["content"]
        for p in payloads[1:]
        for c in p["choices"]
        if c["delta"].get("content")
    }
    assert sorted(contents) == [0, 1, 2]
    assert len(a.calls) == 3


def test_a_call_builds_what_it_is_asked_for_once() -> None:
    call = Call(chat_request(), "upstream")
    built: list[int] = []

    def build() -> bytes:
        built.append(1)
        return b"body"

    assert call.once("body", build) is call.once("body", build)
    assert built == [1]
    assert replace(call, upstream_model="other").built == {}
