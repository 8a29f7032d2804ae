"""GET /playground: a page to try any routed model with images."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from starlette.responses import HTMLResponse

from app.api.deps import GatewayDep
from app.errors import RouteNotFound

router = APIRouter()


@router.get("/playground", include_in_schema=False)
async def playground(gateway: GatewayDep) -> HTMLResponse:
    if not gateway.config.server.playground:
        raise RouteNotFound("unknown path")
    page = files("app").joinpath("static/playground.html").read_text(encoding="utf-8")
    return HTMLResponse(page)
