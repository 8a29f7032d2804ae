"""Takeoff: one image per request as multipart, raw tokens streamed back as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx
import orjson
from pydantic import BaseModel, ConfigDict

from app.config import ModelEntry
from app.errors import UpstreamError
from app.images import ImageNeeds
from app.providers.base import (
    ACCEPTED,
    ALL_RESPONSE_FORMATS,
    Call,
    Capabilities,
    Event,
    ProviderContext,
    StreamingTranslator,
    parse_options,
)
from app.providers.prompt import flatten_conversation
from app.providers.stops import StopFilter, apply_stops
from app.providers.upstream import UpstreamAPI, json_object, map_upstream_errors
from app.wire.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    Choice,
    ChoiceDelta,
    ChunkChoice,
)
from app.wire.sse import iter_sse_data

DEFAULT_BASE_URL = "http://localhost:3000"
END_OF_SEQUENCE = "</s>"
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}


class TakeoffOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consumer_group: str = "primary"
    use_chat_template: bool = False


class Takeoff(StreamingTranslator):
    """`/generate[_stream]` as JSON, or `/image_generate[_stream]` as multipart with the image."""

    capabilities = Capabilities(
        images=ImageNeeds(urls=False, max_images=1, raw_bytes=True),
        needs_api_key=False,
        native_n=True,
        response_formats=ALL_RESPONSE_FORMATS,  # its constrained decoding takes a JSON schema
    )

    def __init__(self, entry: ModelEntry, context: ProviderContext) -> None:
        self._options = parse_options(entry, TakeoffOptions)
        self._api = UpstreamAPI.for_entry(
            entry, context.transport, name="takeoff", default_base_url=DEFAULT_BASE_URL
        )

    def payload(self, call: Call) -> dict[str, object]:
        """The `json_data` / generate body (pure)."""
        request = call.request
        prompt = flatten_conversation(request)
        body: dict[str, object] = {
            "text": [prompt] * request.choice_count if request.choice_count > 1 else prompt,
            "consumer_group": self._options.consumer_group,
        }
        if self._options.use_chat_template:
            body["use_chat_template"] = True
        if request.max_completion_tokens or request.max_tokens:
            body["max_new_tokens"] = request.max_completion_tokens or request.max_tokens
        if request.temperature is not None:
            body["sampling_temperature"] = request.temperature
        if request.top_p is not None:
            body["sampling_topp"] = request.top_p
        schema = call.request.json_schema()
        if schema is not None:
            body["json_schema"] = schema
        return body

    def _request(self, call: Call, *, stream: bool) -> httpx.Request:
        suffix = "_stream" if stream else ""
        payload = orjson.dumps(self.payload(call))
        if not call.images or call.images[0].image is None:
            return self._api.request(
                "POST",
                self._api.url(f"/generate{suffix}"),
                content=payload,
                headers={"Content-Type": "application/json", "Accept": "*/*"},
            )
        image = call.images[0].image
        files = {
            "json_data": (None, payload, "application/json"),
            "image_data": (f"image.{_EXTENSIONS.get(image.mime, 'png')}", image.data, image.mime),
        }
        return self._api.request(
            "POST",
            self._api.url(f"/image_generate{suffix}"),
            files=files,
            headers={"Accept": "*/*"},
        )

    async def complete(self, call: Call) -> ChatCompletion:
        reply = json_object(await self._api.send(self._request(call, stream=False)), "takeoff")
        texts = reply.get("text")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise UpstreamError("the takeoff upstream sent a malformed reply")
        stops = _stops(call)
        choices = []
        for index, text in enumerate(texts):
            content, _ = apply_stops(text, stops)
            choices.append(Choice(index=index, message=ChatCompletionMessage(content=content)))
        return ChatCompletion(model=call.request.model, choices=choices)

    async def stream(self, call: Call) -> AsyncGenerator[Event]:
        response = await self._api.open_stream(self._request(call, stream=True))
        try:
            count = call.request.choice_count
            yield ACCEPTED
            filters = [StopFilter(_stops(call)) for _ in range(count)]
            with map_upstream_errors("takeoff"):
                async for data in iter_sse_data(response):
                    index, text = _event(data, batched=count > 1)
                    if 0 <= index < count and (piece := filters[index].feed(text)):
                        yield _chunk(index, piece)
                    if all(stop_filter.stopped for stop_filter in filters):
                        break  # closing the response stops the upstream generating
            for index, stop_filter in enumerate(filters):
                if rest := stop_filter.flush():
                    yield _chunk(index, rest)
            for index in range(count):
                yield _chunk(index, None, "stop")
        finally:
            await response.aclose()


def _chunk(index: int, text: str | None, finish: str | None = None) -> ChatCompletionChunk:
    """One choice's piece; the gateway stamps the stream's id and model on it."""
    return ChatCompletionChunk(
        id="",
        created=0,
        model="",
        choices=[ChunkChoice(index=index, delta=ChoiceDelta(content=text), finish_reason=finish)],
    )


def _event(data: str, *, batched: bool) -> tuple[int, str]:
    """A stream event's choice index and text: raw text, or `{text, batch_id}` for batches."""
    if not batched:
        return 0, data
    try:
        event = orjson.loads(data)
        return int(event["batch_id"]), str(event["text"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise UpstreamError("the takeoff upstream sent a malformed batch event") from None


def _stops(call: Call) -> list[str]:
    stop = call.request.stop
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    return [*stops, END_OF_SEQUENCE]
