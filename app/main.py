"""The app factory: `create_app(config)` builds everything; `app` serves `$GATEWAY_CONFIG`."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.routing import Router as LifespanRouter

from app.api.front import Front
from app.api.routes import build_endpoints
from app.config import DEFAULT_CONFIG_PATH, GatewayConfig, load_config
from app.documents import DocumentPipeline
from app.images import ImagePipeline
from app.images.cache import ImageCache
from app.images.fetch import ImageFetcher, Resolver, system_resolver
from app.images.held import FetchedBytes
from app.observe import tracing
from app.observe.logs import configure_logging
from app.observe.metrics import Metrics
from app.providers.base import ProviderContext
from app.responses.store import ResponseStore
from app.server.allocator import release_large_buffers, settle_heap
from app.service.cache import ResponseCache
from app.service.completions import ChatService
from app.service.gateway import Gateway
from app.service.limits import Cooldowns, RateLimiter
from app.service.routing import Router
from app.state import build_state
from app.transport import AiohttpTransport
from app.wire.shape import RequestShape

logger = logging.getLogger(__name__)


def create_app(config: GatewayConfig, *, resolver: Resolver = system_resolver) -> Front:
    """A gateway serving `config`. Upstream connections live for the app's lifespan.
    `resolver` answers the image fetcher's DNS questions (tests give their own)."""
    transport = AiohttpTransport()
    metrics = Metrics()
    images = config.images
    fetcher = ImageFetcher(
        timeout_s=images.fetch_timeout_s,
        max_bytes=images.max_image_bytes,
        allow_private_networks=images.allow_private_networks,
        resolver=resolver,
        max_connections=images.max_fetch_connections,
        per_client=images.max_fetches_per_client,
        held=FetchedBytes(images.max_fetched_bytes_per_request, images.max_fetched_bytes),
    )
    pipeline = ImagePipeline(images, fetcher, ImageCache(images.cache_bytes), metrics)
    documents = DocumentPipeline(
        config.documents,
        config.requests,
        fetcher,
        metrics,
        max_image_pixels=images.max_image_pixels,
    )
    state = build_state(config.state, on_error=metrics.state_errors.inc)
    router = Router(config, ProviderContext(transport, config.images, state, metrics))
    limiter = RateLimiter(state)
    gateway = Gateway(
        config=config,
        router=router,
        service=ChatService(
            config,
            router,
            pipeline,
            documents,
            metrics,
            limiter,
            Cooldowns(state),
            cache=ResponseCache(config.cache, state, fetcher, metrics),
        ),
        documents=documents,
        metrics=metrics,
        limiter=limiter,
        state=state,
        responses=ResponseStore(
            state, config.responses, keyed=bool(config.server.active_keys()), metrics=metrics
        ),
        shape=RequestShape(config.requests),
        started_at=int(time.time()),
        api_keys=config.server.active_keys(),
    )

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        logger.info("serving %d model(s)", len(router.served()))
        tracing.start(os.environ)
        try:
            yield
        finally:
            # The last spans go out now, in a thread: sending them blocks (for the exporter's
            # timeout, when the collector is down), and the loop has more to close.
            await asyncio.to_thread(tracing.stop)
            await transport.aclose()
            await fetcher.aclose()
            documents.close()
            await state.aclose()
            metrics.worker_exited()

    return Front(gateway, build_endpoints(), LifespanRouter(lifespan=lifespan))


def __getattr__(name: str) -> Front:
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
