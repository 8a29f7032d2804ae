"""Typed access to the gateway for FastAPI routes, and the gateway-key check as a dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import ApiKey
from app.gateway import Gateway, gateway_of


async def get_gateway(request: Request) -> Gateway:
    return gateway_of(request)


async def require_key(request: Request) -> ApiKey | None:
    return gateway_of(request).authenticate(request)


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
KeyDep = Annotated[ApiKey | None, Depends(require_key)]
