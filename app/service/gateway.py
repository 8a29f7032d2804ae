"""Everything `create_app` builds for one gateway, in one object the routes reach."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import cached_property

from starlette.datastructures import Headers
from starlette.types import Scope

from app.config import ApiKey, GatewayConfig
from app.documents import DocumentPipeline
from app.errors import AuthenticationFailed, ModelNotAllowed
from app.errors.quoting import shortened
from app.observe.metrics import Metrics
from app.observe.record import ANONYMOUS
from app.responses.store import ResponseStore
from app.service.cache import CacheControl
from app.service.completions import ChatService
from app.service.limits import Limit, RateLimiter
from app.service.routing import Router
from app.state import StateBackend
from app.wire.shape import RequestShape


@dataclass(frozen=True)
class Gateway:
    config: GatewayConfig
    router: Router
    service: ChatService
    documents: DocumentPipeline
    metrics: Metrics
    limiter: RateLimiter
    state: StateBackend
    responses: ResponseStore
    shape: RequestShape
    started_at: int
    api_keys: list[ApiKey] = field(default_factory=list)

    def authenticate(self, headers: Headers) -> ApiKey | None:
        """The caller's gateway key, when keys are configured; 401 without a valid one.
        Every configured key is compared, in constant time, whatever matches."""
        if not self.api_keys:
            return None
        scheme, _, token = headers.get("authorization", "").partition(" ")
        offered = token.strip().encode() if scheme.lower() == "bearer" else b""
        match = None
        for key in self.api_keys:
            if secrets.compare_digest(offered, key.key.encode()):
                match = key
        if match is None:
            raise AuthenticationFailed(
                "a valid gateway key is required: Authorization: Bearer <key>"
            )
        return match

    def admit(self, key: ApiKey | None, model: str, *, cost: int = 1) -> Limit | None:
        """A model request's checks before any work: the key's rights (403 here), then its
        rate (`cost` requests: `n` choices fanned out are `n` requests). The rate is returned,
        to be counted with the request's other limits in one step of the state backend (by
        the chat service; `limiter.check` when something is refused before that)."""
        if not self.may_use(key, model):
            raise ModelNotAllowed(
                f"this key may not use the model {shortened(model)!r}", param="model"
            )
        if key is None or key.rpm <= 0:
            return None
        return Limit(f"key:{key.label}", key.rpm, "this key", cost)

    def may_use(self, key: ApiKey | None, model: str) -> bool:
        """Whether the key may use `model`: any key without a `models` list may; one with a
        list, by the route the name takes (`Router.permits`)."""
        return key is None or key.models is None or self.router.permits(key.models, model)

    def cache_control(self, scope: Scope, key: ApiKey | None) -> CacheControl | None:
        """Whose request it is, and what its `Cache-Control` asks of the response cache; None
        when no model keeps answers."""
        if not self.caching:
            return None
        owner = key.label if key is not None else ANONYMOUS
        return CacheControl.of(Headers(scope=scope).get("cache-control"), owner)

    @cached_property
    def caching(self) -> bool:
        """Whether any model keeps answers."""
        return any(entry.cache is not None for entry in self.config.models)
