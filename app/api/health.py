"""Liveness, readiness and metrics: the operator's endpoints, never behind a gateway key."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from app.api.endpoints import Incoming
from app.api.replies import json_reply

_HEALTHY = b'{"status":"ok"}'


async def health(_: Incoming) -> Response:
    return Response(_HEALTHY, media_type="application/json")


async def ready(incoming: Incoming) -> Response:
    """Ready once the config is loaded and the state backend answers; 503 `degraded` while
    it does not (requests are still served, with limits kept per process)."""
    gateway = incoming.gateway
    alive = await gateway.state.ping()
    body = {
        "status": "ready" if alive else "degraded",
        "models": len(gateway.router.served()),
        "state": gateway.state.name,
    }
    return json_reply(body, 200 if alive else 503)


async def metrics(incoming: Incoming) -> Response:
    return Response(incoming.gateway.metrics.render(), media_type=CONTENT_TYPE_LATEST)
