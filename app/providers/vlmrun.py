"""VLM Run: structured predictions for a domain, answered at once or polled until completed."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pydantic import BaseModel, ConfigDict

from app.config import ModelEntry
from app.errors import InvalidRequest, UpstreamError
from app.images import ImageNeeds
from app.providers.base import (
    ALL_RESPONSE_FORMATS,
    Call,
    Capabilities,
    ProviderContext,
    parse_options,
)
from app.providers.jobs import JobProvider, JobState, JobStatus, job_id
from app.providers.listing import CachedList
from app.providers.prompt import message_text
from app.providers.upstream import MalformedReply, UpstreamAPI
from app.wire.schemas import ChatCompletion, ChatCompletionMessage, Choice

DEFAULT_BASE_URL = "https://api.vlm.run/v1"
DEFAULT_MODEL = "vlm-1"
_STATUSES: dict[str, JobStatus] = {
    "enqueued": "queued",
    "pending": "queued",
    "running": "running",
    "paused": "running",  # may resume: polling goes on until the deadline
    "completed": "succeeded",
    "failed": "failed",
}


class VLMRunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: str | None = None
    batch: bool = False
    list_domains: bool = False  # GET /v1/models lists vlmrun/<domain> for each upstream domain


@dataclass(frozen=True)
class Prediction:
    id: str


class VLMRun(JobProvider[Prediction]):
    """`POST /image/generate`, then `GET /predictions/{id}` unless it is already completed."""

    name = "vlmrun"

    capabilities = Capabilities(
        images=ImageNeeds(urls=True, mixed=False),
        jobs=True,
        # Its predictions are JSON objects, of the domain's schema or of the one asked for.
        response_formats=ALL_RESPONSE_FORMATS,
    )

    def __init__(self, entry: ModelEntry, context: ProviderContext) -> None:
        self._options = parse_options(entry, VLMRunOptions)
        self._model = entry.upstream_model or DEFAULT_MODEL
        self._api = UpstreamAPI.for_entry(
            entry, context.transport, name="vlmrun", default_base_url=DEFAULT_BASE_URL
        )
        self.poll_interval_s = entry.poll_interval_s
        self.metrics = context.metrics
        self._domain_list = CachedList(self._domains)
        self.capabilities = Capabilities(
            images=self.capabilities.images,
            jobs=True,
            lists_models=self._options.list_domains,
            response_formats=ALL_RESPONSE_FORMATS,
        )

    async def _domains(self) -> list[str]:
        request = self._api.request("GET", self._api.url("/domains"))
        try:
            reply = orjson.loads((await self._api.send(request)).content)
        except orjson.JSONDecodeError:
            raise UpstreamError("the vlmrun upstream sent a malformed domain list") from None
        if not isinstance(reply, list):
            return []
        return sorted(
            str(item["domain"]) for item in reply if isinstance(item, dict) and item.get("domain")
        )

    async def list_models(self) -> list[str]:
        """The domains the upstream offers, when `list_domains` asks for them (cached)."""
        return await self._domain_list.get() if self._options.list_domains else []

    def _domain(self, call: Call) -> str:
        domain = self._options.domain or call.variant
        if not domain:
            raise InvalidRequest(
                "this model needs a domain: configure options.domain, or route it as "
                "vlmrun/* and ask for vlmrun/<domain>",
                param="model",
            )
        return domain

    def payload(self, call: Call) -> dict[str, object]:
        """The `/image/generate` body for a call (pure)."""
        if not call.images:
            raise InvalidRequest("this model needs at least one image", param="messages")
        prompt = "\n\n".join(text for m in call.request.messages if (text := message_text(m)))
        config: dict[str, object] = {"prompt": prompt or None}
        # `json_object` needs no schema: the domain's answer already is an object.
        response_format = call.request.response_format
        if response_format is not None and response_format.type == "json_schema":
            config["json_schema"] = call.request.json_schema()
        if call.request.max_completion_tokens or call.request.max_tokens:
            config["max_tokens"] = call.request.max_completion_tokens or call.request.max_tokens
        if call.request.temperature is not None:
            config["temperature"] = call.request.temperature
        return {
            "model": self._model,
            "domain": self._domain(call),
            "batch": self._options.batch,
            # The image parts' URLs: the client's, or stand-ins for what the gateway made of
            # them, which the body gets in their place (`Call.inline`).
            "images": [part.image_url.url for _, part in call.request.image_parts()],
            "config": config,
        }

    async def submit(self, call: Call) -> tuple[Prediction, JobState | None]:
        reply = await self._api.call("POST", "/image/generate", self.payload(call), call.inline)
        if not reply.get("id"):
            raise UpstreamError("the vlmrun upstream gave no prediction id")
        return Prediction(job_id(reply["id"], "vlmrun")), _state(reply)

    async def check(self, job: Prediction) -> JobState:
        return _state(await self._api.call("GET", f"/predictions/{job.id}"))

    def to_completion(self, call: Call, job: Prediction, state: JobState) -> ChatCompletion:
        raw = state.raw or {}
        usage = raw.get("usage") if isinstance(raw.get("usage"), dict) else {}
        return ChatCompletion(
            model=call.request.model,
            choices=[Choice(message=ChatCompletionMessage(content=_as_text(state.output)))],
            x_gateway={
                "provider": "vlmrun",
                "job_id": job.id,
                "domain": raw.get("domain"),
                "credits_used": usage.get("credits_used") if isinstance(usage, dict) else None,
            },
        )


def _state(reply: dict[str, object]) -> JobState:
    """A prediction reply read; one without a known status, or completed without its
    response, is malformed."""
    named = reply.get("status")
    status = _STATUSES.get(named) if isinstance(named, str) else None
    if status is None:
        raise MalformedReply("the vlmrun upstream sent a prediction status it does not document")
    if status == "succeeded" and reply.get("response") is None:
        raise MalformedReply("the vlmrun prediction completed without a response")
    error = None
    if status == "failed":
        usage = reply.get("usage")
        message = usage.get("message") if isinstance(usage, dict) else None
        error = str(reply.get("error") or message or "") or None
    return JobState(status, reply.get("response"), error, raw=reply)


def _as_text(response: object) -> str:
    """The prediction's JSON as the message content: a JSON string, as the client expects."""
    if isinstance(response, str):
        return response
    return orjson.dumps(response).decode()
