"""Liveness, readiness and metrics: the operator's endpoints, never behind a gateway key."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import JSONResponse, Response

from app.api.deps import GatewayDep

router = APIRouter()


@router.get("/health")
async def health() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(gateway: GatewayDep) -> Response:
    """Ready once the config is loaded and the state backend answers; 503 `degraded` while
    it does not (requests are still served, with limits kept per process)."""
    alive = await gateway.state.ping()
    body = {
        "status": "ready" if alive else "degraded",
        "models": len(gateway.router.served()),
        "state": gateway.state.name,
    }
    return JSONResponse(body, status_code=200 if alive else 503)


@router.get("/metrics")
async def metrics(gateway: GatewayDep) -> Response:
    return Response(gateway.metrics.render(), media_type=CONTENT_TYPE_LATEST)
