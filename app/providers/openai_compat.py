"""Pass-through to any OpenAI-compatible server (OpenAI, vLLM, Ollama, LM Studio, OpenRouter)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

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
    ChoiceDelta,
    ChunkChoice,
)
from app.wire.sse import DONE_DATA, iter_sse_data

_JSON = {"Content-Type": "application/json"}


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
            lambda: encode_json(self.payload(call, stream=stream), call.request.inline),
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
        return self.parse_completion(response.content)

    async def stream(self, call: Call) -> AsyncGenerator[Event]:
        """Accepted once the upstream answered with a stream, then its chunks as they come
        (its own role announcement left out).

        Several OpenAI-compatible servers end a complete answer with `[DONE]` without ever
        sending a `finish_reason`: such a stream gets one (`stop`), before its usage chunk.
        A stream that ends without `[DONE]` or a `finish_reason` broke off."""
        response = await self._api.open_stream(self._request(call, stream=True))
        try:
            yield ACCEPTED
            finished, done = False, False
            usage: ChatCompletionChunk | None = None  # held while no finish_reason came
            with map_upstream_errors(self.name):
                async for data in iter_sse_data(response, with_done=True):
                    if data is DONE_DATA:
                        done = True
                        continue
                    chunk = _parse_chunk(data, self.name, self._api.secrets)
                    finished = finished or any(c.finish_reason for c in chunk.choices)
                    if not finished and not chunk.choices and chunk.usage is not None:
                        usage = chunk
                    elif _strip_role(chunk):
                        yield chunk
            if not finished:
                if not done:
                    raise UpstreamError(
                        f"the {self.name} upstream stream ended before it was complete"
                    )
                yield _finish_chunk(call.request.choice_count)
            if usage is not None:
                yield usage
        finally:
            await response.aclose()


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
