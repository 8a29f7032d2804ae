"""The config model, and loading and validating `config.yaml` into it: variables substituted,
strict keys reported with their line."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from app.config.loading import ConfigError as ConfigError  # where every caller finds it
from app.config.loading import (
    api_key_variables,
    describe,
    read_tree,
    substitute_tree,
)
from app.config.names import ModelPattern

DEFAULT_CONFIG_PATH = "config.yaml"
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_POLL_INTERVAL_S = 2.0
DEFAULT_COOLDOWN_S = 30.0
DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
DEFAULT_MAX_FANOUT_N = 8


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiKey(_Strict):
    key: str
    name: str | None = None
    models: list[str] | None = None
    rpm: Annotated[int, Field(ge=0)] = 0

    @property
    def label(self) -> str:
        """How logs and counters name this key: its `name`, or a hash prefix; never the key."""
        return self.name or "key-" + hashlib.sha256(self.key.encode()).hexdigest()[:12]


class ServerConfig(_Strict):
    api_keys: list[str | ApiKey] = Field(default_factory=list)
    max_request_bytes: Annotated[int, Field(gt=0)] = 32 * 1024 * 1024
    # Memory kept for reading large request bodies into (see app/api/bodies.py); 0: none.
    body_buffers_bytes: Annotated[int, Field(ge=0)] = 64 * 1024 * 1024
    playground: bool = True
    shutdown_grace_s: Annotated[float, Field(ge=0)] = 30.0
    log_format: Literal["json", "text"] = "json"
    # What one connection may hold; enforced by `python -m app` (see app/server/protocol.py).
    max_header_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    header_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    body_timeout_s: Annotated[float, Field(gt=0)] = 60.0
    keepalive_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    # A stream quiet for this long gets a `: keepalive` comment (see app/api/stream.py).
    stream_keepalive_s: Annotated[float, Field(gt=0)] = 5.0
    max_connections: Annotated[int, Field(ge=1)] = 1000
    # Origins whose browser pages may call the gateway (`*`: any); none by default.
    cors: list[str] = Field(default_factory=list)
    # Peers (addresses or networks) whose `X-Forwarded-For` names the client in the log.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)

    @field_validator("cors")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        return [_origin(origin) for origin in origins]

    def active_keys(self) -> list[ApiKey]:
        """Keys with a value: an empty `${GATEWAY_API_KEY:-}` means no key is required."""
        keys = [ApiKey(key=entry) if isinstance(entry, str) else entry for entry in self.api_keys]
        return [key for key in keys if key.key]


class ImagesConfig(_Strict):
    max_images_per_request: Annotated[int, Field(ge=0)] = 16
    max_image_bytes: Annotated[int, Field(gt=0)] = 20 * 1024 * 1024
    max_image_pixels: Annotated[int, Field(gt=0)] = 50_000_000
    fetch_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    max_fetch_connections: Annotated[int, Field(gt=0)] = 100
    max_fetches_per_request: Annotated[int, Field(gt=0)] = 4
    max_fetches_per_client: Annotated[int, Field(gt=0)] = 8
    # Bytes of image and document URLs one request may fetch and hold (400 past it), and the
    # requests in flight of one worker together (503 past it).
    max_fetched_bytes_per_request: Annotated[int, Field(gt=0)] = 64 * 1024 * 1024
    max_fetched_bytes: Annotated[int, Field(gt=0)] = 256 * 1024 * 1024
    allow_private_networks: bool = False
    fetch_remote: Literal["auto", "always"] = "auto"
    # Converted images kept by content hash, so that one sent again is not converted again.
    cache_bytes: Annotated[int, Field(ge=0)] = 16 * 1024 * 1024
    # What conversions under way may hold at once in decoded pixels and their copies, per
    # worker; an image that alone would take more is refused (400 image_too_large).
    max_decode_bytes: Annotated[int, Field(ge=16 * 1024 * 1024)] = 256 * 1024 * 1024
    # One client's share of it (null: half); a client with nothing under way may always
    # start one conversion.
    max_decode_bytes_per_client: Annotated[int, Field(ge=0)] | None = None
    # Scans of a progressive JPEG decoded at most; one of more is refused.
    max_jpeg_scans: Annotated[int, Field(ge=1)] = 100
    # Location and identity metadata (EXIF but its orientation, XMP, IPTC, comments) stay in
    # images that go upstream as they came; by default they are taken out.
    keep_metadata: bool = False

    @property
    def decode_share(self) -> int:
        """`max_decode_bytes_per_client`, or half of `max_decode_bytes` when unset."""
        share = self.max_decode_bytes_per_client
        return self.max_decode_bytes // 2 if share is None else share


class DocumentsConfig(_Strict):
    """PDFs in requests: what one may hold, and how its pages are rendered for upstreams that
    take images."""

    max_bytes: Annotated[int, Field(gt=0)] = 20 * 1024 * 1024
    # A document of more pages is refused (400 invalid_document).
    max_pages: Annotated[int, Field(ge=1, le=2000)] = 50
    # Pages are rendered at `dpi`, their longer side at most `max_side` pixels.
    dpi: Annotated[int, Field(ge=36, le=600)] = 150
    max_side: Annotated[int, Field(ge=256, le=8192)] = 1600
    text_layer: bool = True
    # One document must be read and rendered within this, or it is refused.
    timeout_s: Annotated[float, Field(gt=0)] = 30.0
    # Processes that render documents, per worker; each renders one document at a time.
    render_processes: Annotated[int, Field(ge=1, le=64)] = 1
    # What one render process may map, so that no document can take the machine's memory.
    max_render_memory_bytes: Annotated[int, Field(ge=256 * 1024 * 1024)] = 1024 * 1024 * 1024
    # Rendered pages kept by the document's content hash, so that one sent again (or tried
    # on the next deployment of a group) is not rendered again; 0: none.
    cache_bytes: Annotated[int, Field(ge=0)] = 32 * 1024 * 1024


class CacheConfig(_Strict):
    """The response cache, as every model entry that opts in shares it."""

    # What cached answers hold in the state backend altogether.
    max_bytes: Annotated[int, Field(ge=0)] = 256 * 1024 * 1024
    # How long an image URL's content hash is remembered, so that it is not fetched again.
    url_memo_s: Annotated[float, Field(ge=0)] = 300.0


class EntryCache(_Strict):
    """A model entry's answers cached, keyed on what its upstream would be sent."""

    ttl_s: Annotated[float, Field(gt=0)] = 3600.0
    max_entry_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    # repeatable: only requests whose answer may be given again (temperature 0 or unset, n 1).
    when: Literal["repeatable", "always"] = "repeatable"
    # by_content: image URLs are keyed on their bytes (fetched once, then remembered).
    url_images: Literal["by_content", "by_url"] = "by_content"
    # Whether every gateway key shares the entry's answers (by default each has its own).
    shared: bool = False


class RequestsConfig(_Strict):
    """The shape a chat request may have, checked before the body becomes objects."""

    max_messages: Annotated[int, Field(ge=1)] = 1024
    max_content_parts: Annotated[int, Field(ge=1)] = 4096
    max_text_chars: Annotated[int, Field(ge=1)] = 4 * 1024 * 1024
    max_json_depth: Annotated[int, Field(ge=4, le=200)] = 64
    max_json_items: Annotated[int, Field(ge=1000)] = 100_000
    max_model_chars: Annotated[int, Field(ge=1)] = 256


class StateConfig(_Strict):
    backend: Literal["memory", "redis"] = "memory"
    url: str = "redis://localhost:6379/0"


class ResponsesConfig(_Strict):
    """Stored responses (the Responses API's `store`): how long they live and what they may
    hold in the state backend altogether."""

    ttl_s: Annotated[float, Field(ge=0)] = 3600.0
    max_bytes: Annotated[int, Field(ge=0)] = 256 * 1024 * 1024
    # What one gateway key's responses and the images they carry may hold of `max_bytes`.
    # Unset: a quarter of it when gateway keys are configured; without keys every request
    # has the same owner, which may use all of it.
    max_bytes_per_key: Annotated[int, Field(ge=0)] | None = None
    # One stored value at most: a response's record, or one image it carries.
    max_record_bytes: Annotated[int, Field(gt=0)] = 32 * 1024 * 1024
    # What one streamed response may gather from its upstream: text and tool-call arguments,
    # and output items (a message, one per tool call).
    max_answer_chars: Annotated[int, Field(gt=0)] = 4 * 1024 * 1024
    max_output_items: Annotated[int, Field(gt=0)] = 128


# Providers whose upstreams speak OpenAI's wire, and so may read PDFs themselves.
NATIVE_DOCUMENT_PROVIDERS = frozenset({"openai", "aimlapi"})
ProviderKind = Literal[
    "openai", "aimlapi", "predictionguard", "masterpiecex", "vlmrun", "takeoff", "inspect"
]


class ModelEntry(_Strict):
    """One deployment: a client-facing name routed to one upstream."""

    name: Annotated[str, Field(min_length=1)]
    provider: ProviderKind
    upstream_model: str | None = None
    base_url: str | None = None
    api_key: str = ""
    timeout_s: Annotated[float, Field(gt=0)] = DEFAULT_TIMEOUT_S
    poll_interval_s: Annotated[float, Field(gt=0)] = DEFAULT_POLL_INTERVAL_S
    rpm: Annotated[int, Field(ge=0)] = 0
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    # How long a deployment that keeps failing is skipped for; 0: never skipped.
    cooldown_s: Annotated[float, Field(ge=0)] = DEFAULT_COOLDOWN_S
    # PDFs: rendered to page images and text for the upstream, or passed on as they came to an
    # OpenAI-compatible upstream that reads documents itself.
    documents: Literal["render", "native"] = "render"
    # Answers kept and given again for the same request (absent: none are).
    cache: EntryCache | None = None
    # What one upstream reply may cost: a whole non-streamed body, one event of a stream.
    max_reply_bytes: Annotated[int, Field(gt=0)] = DEFAULT_MAX_REPLY_BYTES
    max_event_bytes: Annotated[int, Field(gt=0)] = DEFAULT_MAX_EVENT_BYTES
    # The largest `n` served by parallel upstream calls (providers without a native `n`).
    max_fanout_n: Annotated[int, Field(ge=1, le=128)] = DEFAULT_MAX_FANOUT_N
    options: dict[str, object] = Field(default_factory=dict)
    fallbacks: list[str] = Field(default_factory=list)

    # The environment variables `api_key` was written with, to name them when one is unset.
    _api_key_variables: tuple[str, ...] = PrivateAttr(default=())

    @property
    def pattern(self) -> ModelPattern:
        return ModelPattern(self.name)

    @property
    def api_key_variables(self) -> tuple[str, ...]:
        return self._api_key_variables

    @field_validator("base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _native_documents_need_an_openai_upstream(self) -> ModelEntry:
        if self.documents == "native" and self.provider not in NATIVE_DOCUMENT_PROVIDERS:
            raise ValueError(
                f"documents: native passes PDFs on as OpenAI's API takes them, which only "
                f"{' and '.join(sorted(NATIVE_DOCUMENT_PROVIDERS))} upstreams may read"
            )
        return self


class GatewayConfig(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)
    requests: RequestsConfig = Field(default_factory=RequestsConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    responses: ResponsesConfig = Field(default_factory=ResponsesConfig)
    documents: DocumentsConfig = Field(default_factory=DocumentsConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    models: list[ModelEntry] = Field(default_factory=list)

    def secrets(self) -> list[str]:
        """Every credential in the config, for the log scrubber."""
        keys = [key.key for key in self.server.active_keys()]
        return keys + [entry.api_key for entry in self.models if entry.api_key]


def _origin(text: str) -> str:
    """An origin as browsers send it, `scheme://host[:port]` (a trailing `/` forgiven)."""
    if text == "*":
        return text
    origin = text.strip().lower().removesuffix("/")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise ValueError(f"{text!r} is not an origin: write scheme://host[:port], or *")
    return origin


def parse_config(
    text: str, environ: Mapping[str, str] | None = None, *, source: str = "config"
) -> GatewayConfig:
    """Parse YAML text into a validated config. Raises ConfigError with a readable message."""
    environ = os.environ if environ is None else environ
    tree = read_tree(text, source)
    substituted = substitute_tree(tree, environ, source)
    try:
        config = GatewayConfig.model_validate(substituted)
    except ValidationError as exc:
        raise ConfigError(describe(exc, tree, source)) from None
    for entry, names in zip(config.models, api_key_variables(tree.get("models")), strict=False):
        entry._api_key_variables = names
    return config


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read and validate a config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return parse_config(text, environ, source=str(path))
