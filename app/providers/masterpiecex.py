"""Masterpiece X: images uploaded to its storage, then an image-query job polled to the end."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from app.config import ModelEntry
from app.errors import UpstreamError, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from app.images import ImageNeeds, PreparedImage
from app.providers.base import Call, Capabilities, ProviderContext, parse_options
from app.providers.handed import HandedURLs
from app.providers.jobs import JobProvider, JobState, JobStatus, job_id
from app.providers.prompt import flatten_conversation
from app.providers.upstream import MalformedReply, UpstreamAPI
from app.wire.schemas import ChatCompletion, ChatCompletionMessage, Choice

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.genai.masterpiecex.com/v2"
# Where its presigned upload URLs point: Google Cloud Storage.
STORAGE_HOSTS = ("storage.googleapis.com", "*.storage.googleapis.com")
UPLOAD_TTL_S = 24 * 3600
_STATUSES: dict[str, JobStatus] = {
    "pending": "queued",
    "processing": "running",
    "complete": "succeeded",
    "failed": "failed",
}
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}


class MasterpieceXOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upload_remote_images: bool = True
    # Hosts its presigned upload URLs may point at besides its own (`*.` for subdomains).
    storage_hosts: list[str] = Field(default_factory=lambda: list(STORAGE_HOSTS))


@dataclass(frozen=True)
class Job:
    request_id: str
    balance: object = None


class MasterpieceX(JobProvider[Job]):
    """`/llm/image_query` (or `/llm/llm_call` without images), then `/status/{requestId}`."""

    name = "masterpiecex"

    capabilities = Capabilities(images=ImageNeeds(urls=False, raw_bytes=True), jobs=True)

    def __init__(self, entry: ModelEntry, context: ProviderContext) -> None:
        options = parse_options(entry, MasterpieceXOptions)
        # Its storage serves the images it answers about: URLs too are fetched and uploaded,
        # unless the operator says the upstream can fetch them itself.
        self.capabilities = Capabilities(
            images=ImageNeeds(urls=not options.upload_remote_images, raw_bytes=True), jobs=True
        )
        self._api = UpstreamAPI.for_entry(
            entry, context.transport, name="masterpiecex", default_base_url=DEFAULT_BASE_URL
        )
        self._urls = HandedURLs(
            "masterpiecex",
            self._api.base_url,
            options.storage_hosts,
            allow_private=context.images.allow_private_networks,
        )
        self._state = context.state
        self.poll_interval_s = entry.poll_interval_s
        self.metrics = context.metrics

    async def submit(self, call: Call) -> tuple[Job, JobState | None]:
        prompt = flatten_conversation(call.request)
        if call.images:
            urls = [await self._public_url(image) for image in call.images]
            reply = await self._api.call(
                "POST", "/llm/image_query", {"userPrompt": prompt, "imageUrls": urls}
            )
        else:
            reply = await self._api.call("POST", "/llm/llm_call", _text_call(call, prompt))
        if not reply.get("requestId"):
            raise UpstreamError("the masterpiecex upstream gave no requestId")
        return Job(job_id(reply["requestId"], "masterpiecex"), reply.get("balance")), None

    async def check(self, job: Job) -> JobState:
        return job_state(await self._api.call("GET", f"/status/{job.request_id}"))

    def to_completion(self, call: Call, job: Job, state: JobState) -> ChatCompletion:
        raw = state.raw or {}
        return ChatCompletion(
            model=call.request.model,
            choices=[Choice(message=ChatCompletionMessage(content=str(state.output)))],
            x_gateway={
                "provider": "masterpiecex",
                "job_id": job.request_id,
                "balance": job.balance,
                "processing_time_s": raw.get("processingTime_s"),
            },
        )

    async def _public_url(self, image: PreparedImage) -> str:
        """The image's URL in Masterpiece X storage, uploading it once per content hash."""
        if image.image is None:
            return image.url  # `upload_remote_images: false`: the upstream fetches it
        key = f"masterpiecex:upload:{image.image.sha256}:{image.image.mime}"
        cached = await self._state.get(key)
        if cached:
            return cached
        url = await self._upload(image)
        await self._state.set(key, url, UPLOAD_TTL_S)
        return url

    async def _upload(self, image: PreparedImage) -> str:
        assert image.image is not None
        mime = image.image.mime
        name = f"image-{image.image.sha256[:16]}.{_EXTENSIONS.get(mime, 'bin')}"
        asset = await self._api.call(
            "POST",
            "/assets/create",
            {"name": name, "description": "image for an image query", "type": mime},
        )
        upload_url = asset.get("assetUrl")
        if not isinstance(upload_url, str) or not upload_url.startswith("http"):
            raise UpstreamError("the masterpiecex upstream gave no upload URL")
        await self._urls.check(upload_url)
        # The presigned URL carries its own authorisation: the API key is never sent to it.
        put = self._api.request(
            "PUT",
            upload_url,
            content=image.image.data,
            headers={"Content-Type": mime},
            authenticated=False,
        )
        try:
            await self._api.send(put)
        except (UpstreamError, UpstreamRejected) as exc:
            # What storage says goes to the log, not to the client: it may be another service
            # speaking, and it quotes the presigned request.
            logger.debug("masterpiecex storage refused an upload: %s", exc.message)
            if isinstance(exc, UpstreamTimeout | UpstreamUnavailable):
                raise
            raise UpstreamError(
                f"the masterpiecex storage did not take the image ({exc.code})"
            ) from None
        return upload_url.split("?", 1)[0]


def job_state(reply: dict[str, object]) -> JobState:
    """A `/status/{requestId}` reply read; one without a known status, or complete without
    its output, is malformed."""
    named = reply.get("status")
    status = _STATUSES.get(named) if isinstance(named, str) else None
    if status is None:
        raise MalformedReply("the masterpiecex upstream sent a job status it does not document")
    outputs = reply.get("outputs")
    output = outputs.get("output") if isinstance(outputs, dict) else None
    if status == "succeeded" and not isinstance(output, str):
        raise MalformedReply("the masterpiecex job completed without an output")
    error = reply.get("error") or reply.get("message")
    return JobState(status, output, str(error) if error else None, raw=reply)


def _text_call(call: Call, prompt: str) -> dict[str, object]:
    """`/llm/llm_call` for a conversation without images: the same prompt, and the sampling
    fields it knows."""
    params: dict[str, object] = {}
    if call.request.max_completion_tokens or call.request.max_tokens:
        params["maxTokens"] = call.request.max_completion_tokens or call.request.max_tokens
    if call.request.temperature is not None:
        params["temperature"] = call.request.temperature
    body: dict[str, object] = {"userPrompt": prompt}
    if params:
        body["dataParms"] = params
    return body
