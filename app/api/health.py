"""Liveness, readiness and metrics: the operator's endpoints, never behind a gateway key."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import JSONResponse, Response

from app.api.deps import MetricsDep, RouterDep

router = APIRouter()


@router.get("/health")
async def health() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(models: RouterDep) -> Response:
    return JSONResponse({"status": "ready", "models": len(models.served()), "state": "memory"})


@router.get("/metrics")
async def metrics(registry: MetricsDep) -> Response:
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
