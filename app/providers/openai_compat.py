"""Pass-through to any OpenAI-compatible server (OpenAI, vLLM, Ollama, LM Studio, OpenRouter)."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Sequence

import httpx
import orjson
from pydantic import ValidationError

from app.config import ModelEntry
from app.errors import UpstreamError
from app.observe.redaction import redact
from app.providers.base import (
    ACCEPTED,
    ALL_RESPONSE_FORMATS,
    ANSWER_FIELDS,
    Call,
    Capabilities,
    Event,
    NoOptions,
    ProviderContext,
    StreamingTranslator,
    parse_options,
)
from app.providers.listing import CachedList
from app.providers.upstream import UpstreamAPI, json_object, map_upstream_errors, upstream_message
from app.wire.inline import encode_json
from app.wire.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChoiceDelta,
    ChunkChoice,
)
from app.wire.sse import DONE_DATA, EVENTS_BEFORE_YIELD, iter_sse_batches

_JSON = {"Content-Type": "application/json"}
# A reply this large has its choices counted before it is parsed into objects.
LARGE_REPLY_BYTES = 64 * 1024
_MESSAGE_KEY = re.compile(rb'"message"\s*:')
# What a choice and its delta hold when an event is nothing but more text.
_PLAIN_CHOICE = frozenset({"index", "delta", "finish_reason", "logprobs"})
_PLAIN_DELTA = frozenset({"content", "role"})


class OpenAICompatible(StreamingTranslator):
    """Relays requests as they are, asking the upstream for usage on streams."""

    name = "openai"
    default_base_url = "https://api.openai.com/v1"
    capabilities = Capabilities(
        needs_api_key=False,
        native_n=True,
        answer_fields=frozenset(ANSWER_FIELDS),
        lists_models=True,
        response_formats=ALL_RESPONSE_FORMATS,
        audio_input=True,
    )

    def __init__(self, entry: ModelEntry, context: ProviderContext) -> None:
        parse_options(entry, NoOptions)
        self._api = UpstreamAPI.for_entry(
            entry, context.transport, name=self.name, default_base_url=self.default_base_url
        )
        self._url = self._api.url("/chat/completions")
        self._models = CachedList(self._fetch_models)

    async def list_models(self) -> list[str]:
        """The ids the upstream's `GET /models` lists (cached)."""
        return await self._models.get()

    async def _fetch_models(self) -> list[str]:
        reply = json_object(
            await self._api.send(self._api.request("GET", self._api.url("/models"))), self.name
        )
        data = reply.get("data")
        if not isinstance(data, list):
            raise UpstreamError(f"the {self.name} upstream sent a malformed model list")
        return sorted(str(m["id"]) for m in data if isinstance(m, dict) and m.get("id"))

    def _request(self, call: Call, *, stream: bool) -> httpx.Request:
        body = call.once(
            ("body", stream),
            lambda: encode_json(self.payload(call, stream=stream), call.inline),
        )
        return self._api.request("POST", self._url, content=body, headers=_JSON)

    def payload(self, call: Call, *, stream: bool) -> dict[str, object]:
        """The upstream body: the client's request as it is, with the upstream's model name,
        and usage asked for on streams."""
        body = call.request.model_dump(exclude_unset=True)
        body["model"] = call.upstream_model
        if stream:
            body["stream"] = True
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        return body

    def parse_completion(self, content: bytes) -> ChatCompletion:
        try:
            return ChatCompletion.model_validate_json(content)
        except ValidationError:
            raise UpstreamError(f"the {self.name} upstream sent a malformed reply") from None

    async def complete(self, call: Call) -> ChatCompletion:
        response = await self._api.send(self._request(call, stream=False))
        if len(response.content) > LARGE_REPLY_BYTES:
            _check_choice_count(response.content, call.request.choice_count, self.name)
        completion = self.parse_completion(response.content)
        _check_choices(completion.choices, call.request.choice_count, self.name)
        return completion

    async def stream(self, call: Call) -> AsyncGenerator[Event]:
        """Accepted once the upstream answered with a stream, then its chunks as they come
        (its own role announcement left out).

        Several OpenAI-compatible servers end a complete answer with `[DONE]` without ever
        sending a `finish_reason`: such a stream gets one (`stop`), before its usage chunk.
        A stream that ends without `[DONE]` or a `finish_reason` broke off."""
        response = await self._api.open_stream(self._request(call, stream=True))
        choices = call.request.choice_count
        try:
            yield ACCEPTED
            finished, done = False, False
            usage: ChatCompletionChunk | None = None  # held while no finish_reason came
            with map_upstream_errors(self.name):
                async for batch in iter_sse_batches(response, with_done=True):
                    # Merged only when the gateway has fallen a whole batch behind: what
                    # comes at a pace it keeps up with goes out chunk by chunk.
                    merging = len(batch) >= EVENTS_BEFORE_YIELD
                    kept: ChatCompletionChunk | None = None
                    for data in batch:
                        if data is DONE_DATA:
                            done = True
                            continue
                        if kept is not None and merging and _took_text(kept, data, choices):
                            continue
                        try:
                            chunk = _parse_chunk(data, self.name, self._api.secrets)
                            finished = _finishes(chunk, choices, self.name) or finished
                        except UpstreamError:
                            if kept is not None:  # what came before the failure goes out
                                yield kept
                            raise
                        if not finished and not chunk.choices and chunk.usage is not None:
                            usage = chunk
                            continue
                        if not _strip_role(chunk):
                            continue
                        if kept is not None and merging and _joined(kept, chunk):
                            continue
                        if kept is not None:
                            yield kept
                        kept = chunk
                    if kept is not None:
                        yield kept
            if not finished:
                if not done:
                    raise UpstreamError(
                        f"the {self.name} upstream stream ended before it was complete"
                    )
                yield _finish_chunk(choices)
            if usage is not None:
                yield usage
        finally:
            await response.aclose()


def _check_choice_count(content: bytes, asked: int, provider: str) -> None:
    """A large reply's choices counted before any object is made of them, by the `message`
    keys in its JSON (a string's quotes are escaped, so only keys match): an upstream that
    answers a request for one choice with 100,000 would cost a second and a hundred MB of
    building them."""
    if len(_MESSAGE_KEY.findall(content)) > asked:
        raise _too_many_choices(provider, asked)


def _check_choices(choices: Sequence[Choice | ChunkChoice], asked: int, provider: str) -> None:
    """502 for more choices, or a choice index past those, than the request asked for."""
    if len(choices) > asked:
        raise _too_many_choices(provider, asked)
    for choice in choices:
        if not 0 <= choice.index < asked:
            raise _too_many_choices(provider, asked)


def _finishes(chunk: ChatCompletionChunk, asked: int, provider: str) -> bool:
    """Whether a chunk finishes one of its choices; 502 for a choice not asked for. (A plain
    loop: a generator for each chunk cost 7,000 instructions of it.)"""
    choices = chunk.choices
    if len(choices) > asked:
        raise _too_many_choices(provider, asked)
    finished = False
    for choice in choices:
        if not 0 <= choice.index < asked:
            raise _too_many_choices(provider, asked)
        if choice.finish_reason:
            finished = True
    return finished


def _too_many_choices(provider: str, asked: int) -> UpstreamError:
    return UpstreamError(
        f"the {provider} upstream answered with more choices than the {asked} asked for"
    )


def _took_text(kept: ChatCompletionChunk, data: str, asked: int) -> bool:
    """`_joined` for an event that is nothing but more text of the one choice `kept` carries,
    read without making a chunk of it (a third of the cost of parsing it into one)."""
    try:
        event = orjson.loads(data)
        [choice] = event["choices"]
        delta, index = choice["delta"], choice["index"]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return False
    if event.get("usage") or choice.keys() - _PLAIN_CHOICE or delta.keys() - _PLAIN_DELTA:
        return False
    content = delta.get("content")
    if choice.get("finish_reason") or choice.get("logprobs") or not isinstance(content, str):
        return False
    if not isinstance(index, int) or not 0 <= index < asked or len(kept.choices) != 1:
        return False
    before = kept.choices[0]
    if before.index != index or before.finish_reason or not before.delta.content:
        return False
    if kept.usage or _has_extras(before) or _has_extras(before.delta) or not content:
        return False
    if before.logprobs is not None:
        return False
    before.delta.content += content
    return True


def _joined(kept: ChatCompletionChunk, chunk: ChatCompletionChunk) -> bool:
    """Merge `chunk` into `kept` when both only carry more text of the same one choice: the
    events of an upstream that outpaces the gateway go out together, which costs the gateway
    and its client a fraction of relaying each one (a flood of one-character events: 4 s of
    CPU a million instead of 10)."""
    if len(kept.choices) != 1 or len(chunk.choices) != 1 or kept.usage or chunk.usage:
        return False
    before, after = kept.choices[0], chunk.choices[0]
    if before.index != after.index or before.finish_reason or after.finish_reason:
        return False
    if before.logprobs is not None or after.logprobs is not None:
        return False
    if not (before.delta.content and after.delta.content):
        return False
    if _has_extras(before) or _has_extras(after):
        return False
    if _has_extras(before.delta) or _has_extras(after.delta):
        return False
    before.delta.content += after.delta.content
    return True


def _parse_chunk(data: str, provider: str, secrets: tuple[str, ...]) -> ChatCompletionChunk:
    try:
        return ChatCompletionChunk.model_validate_json(data)
    except ValidationError:
        pass
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict) and payload.get("error"):
        message = redact(upstream_message(data.encode()), secrets)
        raise UpstreamError(f"the {provider} upstream failed mid-stream: {message}")
    raise UpstreamError(f"the {provider} upstream sent a malformed stream event")


def _finish_chunk(choices: int) -> ChatCompletionChunk:
    """The end of each choice of an answer the upstream ended with `[DONE]` alone (the gateway
    stamps the stream's id and model on it)."""
    finish = [ChunkChoice(index=index, finish_reason="stop") for index in range(choices)]
    return ChatCompletionChunk(id="", created=0, model="", choices=finish)


def _strip_role(chunk: ChatCompletionChunk) -> bool:
    """Drop the upstream's own role announcement (ours went first); False if nothing is left."""
    meaningful = chunk.usage is not None or not chunk.choices
    for choice in chunk.choices:
        delta = choice.delta
        delta.role = None
        if (
            delta.content
            or choice.finish_reason
            or choice.logprobs is not None
            or _has_extras(delta)
            or _has_extras(choice)
        ):
            meaningful = True
    return meaningful


def _has_extras(model: ChoiceDelta | ChunkChoice) -> bool:
    """Fields beyond ours that carry something (tool calls, logprobs), not OpenAI's nulls."""
    return any(value is not None for value in (model.model_extra or {}).values())
