"""Prediction Guard: OpenAI-like chat that takes images only inline and can't stream them."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson

from app.errors import UpstreamError
from app.images import ImageNeeds
from app.providers.base import Call, Capabilities, Event
from app.providers.openai_compat import OpenAICompatible
from app.providers.prompt import developer_as_system
from app.wire.schemas import ChatCompletion

# The request fields its chat API documents; others are dropped.
_FIELDS = (
    "messages",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning_effort",
    "top_k",
    "input",
    "output",
)


class PredictionGuard(OpenAICompatible):
    """Image URLs arrive as data URIs; `stream: true` with images is one call turned into a
    stream; replies in `message.content` or the legacy `text`."""

    name = "predictionguard"
    default_base_url = "https://api.predictionguard.com"
    capabilities = Capabilities(
        images=ImageNeeds(urls=False, formats=frozenset({"image/jpeg", "image/png"})),
        needs_api_key=True,
        answer_fields=frozenset({"tools", "tool_choice"}),
    )

    def payload(self, call: Call, *, stream: bool) -> dict[str, object]:
        request = call.request
        dumped = request.model_dump(exclude_unset=True)
        body: dict[str, object] = {"model": call.upstream_model}
        body.update({key: dumped[key] for key in _FIELDS if key in dumped})
        body["messages"] = developer_as_system(dumped["messages"])
        if "max_completion_tokens" not in body and request.max_tokens:
            body["max_completion_tokens"] = request.max_tokens
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def parse_completion(self, content: bytes) -> ChatCompletion:
        """Its reply, normalised: content from `message.content` or the legacy `text`, and
        `finish_reason` and `usage` filled in where it leaves them out."""
        try:
            reply = orjson.loads(content)
            choices = [_choice(index, choice) for index, choice in enumerate(reply["choices"])]
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise UpstreamError("the predictionguard upstream sent a malformed reply") from None
        if not choices:
            raise UpstreamError("the predictionguard upstream sent no choices")
        fields: dict[str, object] = {"choices": choices, "model": str(reply.get("model") or "")}
        if isinstance(reply.get("usage"), dict):
            fields["usage"] = reply["usage"]
        if isinstance(reply.get("id"), str):
            fields["id"] = reply["id"]
        return ChatCompletion.model_validate(fields)

    async def execute(self, call: Call, *, stream: bool) -> AsyncGenerator[Event]:
        """It refuses to stream with images: those get one whole answer, which a stream
        starts with only once it is there, so that its failures can still fail over."""
        if stream and not call.images:
            async for event in self.stream(call):
                yield event
        else:
            yield await self.complete(call)


def _choice(index: int, choice: dict[str, object]) -> dict[str, object]:
    """One choice, its message kept whole (tool calls included) and its text found."""
    raw = choice.get("message")
    message = {**raw} if isinstance(raw, dict) else {}
    content = message.get("content")
    if content is None:
        content = choice.get("text")
    if content is None and not message.get("tool_calls"):
        content = ""
    message.update(role="assistant", content=content)
    return {
        "index": choice.get("index", index),
        "message": message,
        "finish_reason": choice.get("finish_reason") or "stop",
    }
