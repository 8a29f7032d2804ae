"""The app factory: `create_app(config)` builds everything; `app` serves `$GATEWAY_CONFIG`."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.allocator import release_large_buffers, settle_heap
from app.api import chat, health, models, playground
from app.completions import ChatService
from app.config import DEFAULT_CONFIG_PATH, GatewayConfig, load_config
from app.errors import install_error_handlers
from app.gateway import Gateway
from app.images import ImagePipeline
from app.images.cache import ImageCache
from app.images.fetch import ImageFetcher, Resolver, system_resolver
from app.limits import Cooldowns, RateLimiter
from app.logs import configure_logging
from app.metrics import Metrics
from app.middleware import RequestContextMiddleware
from app.providers.base import ProviderContext
from app.routing import Router
from app.state import build_state
from app.transport import AiohttpTransport

logger = logging.getLogger(__name__)


class GatewayApp(FastAPI):
    """FastAPI, but `POST /v1/chat/completions` is answered before its middleware stack:
    every request and every streamed token passes there (see `app.api.chat`)."""

    chat: chat.ChatCompletions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in chat.PATHS:
            await self.chat(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(config: GatewayConfig, *, resolver: Resolver = system_resolver) -> FastAPI:
    """A gateway serving `config`. Upstream connections live for the app's lifespan.
    `resolver` answers the image fetcher's DNS questions (tests give their own)."""
    transport = AiohttpTransport()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        logger.info("serving %d model(s)", len(router.served()))
        try:
            yield
        finally:
            await transport.aclose()
            await fetcher.aclose()
            await state.aclose()
            metrics.worker_exited()

    app = GatewayApp(
        title="vision-gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        # Its per-request OpenTelemetry checks cost more than the gateway's own routing;
        # operators get Prometheus metrics and JSON logs instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    metrics = Metrics()
    images = config.images
    fetcher = ImageFetcher(
        timeout_s=images.fetch_timeout_s,
        max_bytes=images.max_image_bytes,
        allow_private_networks=images.allow_private_networks,
        resolver=resolver,
        max_connections=images.max_fetch_connections,
        per_client=images.max_fetches_per_client,
    )
    pipeline = ImagePipeline(images, fetcher, ImageCache(), metrics)
    state = build_state(config.state, on_error=metrics.state_errors.inc)
    router = Router(config, ProviderContext(transport, config.images, state, metrics))
    limiter = RateLimiter(state)
    app.state.gateway = gateway = Gateway(
        config=config,
        router=router,
        service=ChatService(config, router, pipeline, metrics, limiter, Cooldowns(state)),
        metrics=metrics,
        limiter=limiter,
        state=state,
        started_at=int(time.time()),
        api_keys=config.server.active_keys(),
    )
    app.chat = chat.ChatCompletions(gateway)
    # The same app as routes: other methods get 405, and a mounted copy still answers.
    app.router.routes.extend(Route(path, app.chat, methods=["POST"]) for path in chat.PATHS)
    for module in (models, health, playground):
        app.include_router(module.router)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` reads this attribute: the config is loaded then, not at import.
    if name == "app":
        release_large_buffers()
        config = load_config(os.environ.get("GATEWAY_CONFIG", DEFAULT_CONFIG_PATH))
        configure_logging(config.server.log_format, config.secrets())
        served = create_app(config)
        settle_heap()
        globals()["app"] = served
        return served
    raise AttributeError(name)
