"""Liveness, readiness and metrics: the operator's endpoints, never behind a gateway key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import JSONResponse, Response

from app.api.deps import MetricsDep, RouterDep
from app.state import StateBackend

router = APIRouter()


@router.get("/health")
async def health() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(request: Request, models: RouterDep) -> Response:
    """Ready once the config is loaded and the state backend answers; 503 `degraded` while
    it does not (requests are still served, with limits kept per process)."""
    state: StateBackend = request.app.state.state
    alive = await state.ping()
    body = {
        "status": "ready" if alive else "degraded",
        "models": len(models.served()),
        "state": state.name,
    }
    return JSONResponse(body, status_code=200 if alive else 503)


@router.get("/metrics")
async def metrics(registry: MetricsDep) -> Response:
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
