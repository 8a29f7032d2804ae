"""Typed access to what `create_app` built, and the gateway-key check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request

from app.completions import ChatService
from app.config import ApiKey, GatewayConfig
from app.errors import AuthenticationFailed, ModelNotAllowed
from app.limits import RateLimiter
from app.metrics import Metrics
from app.routing import Router


async def get_config(request: Request) -> GatewayConfig:
    config: GatewayConfig = request.app.state.config
    return config


async def get_router(request: Request) -> Router:
    router: Router = request.app.state.router
    return router


async def get_service(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat_service
    return service


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


async def require_key(request: Request) -> ApiKey | None:
    """The caller's gateway key, when keys are configured; 401 without a valid one."""
    keys: list[ApiKey] = request.app.state.api_keys
    if not keys:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    offered = token.strip().encode() if scheme.lower() == "bearer" else b""
    match = None
    for key in keys:
        if secrets.compare_digest(offered, key.key.encode()):
            match = key
    if match is None:
        raise AuthenticationFailed("a valid gateway key is required: Authorization: Bearer <key>")
    return match


def authorize_model(key: ApiKey | None, model: str) -> None:
    """403 when the key is limited to other models (`name`, or a `prefix/*` family)."""
    if key is None or key.models is None:
        return
    for allowed in key.models:
        if model == allowed or (allowed.endswith("/*") and model.startswith(allowed[:-1])):
            return
    raise ModelNotAllowed(f"this key may not use the model {model!r}", param="model")


ConfigDep = Annotated[GatewayConfig, Depends(get_config)]
RouterDep = Annotated[Router, Depends(get_router)]
ServiceDep = Annotated[ChatService, Depends(get_service)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
KeyDep = Annotated[ApiKey | None, Depends(require_key)]
