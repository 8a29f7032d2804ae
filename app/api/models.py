"""GET /v1/models and /v1/models/{id}: the configured, served model names."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from starlette.responses import Response

from app.api.deps import GatewayDep, KeyDep
from app.errors import GatewayError, ModelNotFound
from app.quoting import shortened
from app.routing import Group
from app.schemas import Model, ModelList

logger = logging.getLogger(__name__)
router = APIRouter()


@router.get("/v1/models")
@router.get("/models", include_in_schema=False)
async def list_models(_: KeyDep, gateway: GatewayDep) -> Response:
    created, data = gateway.started_at, []
    for group in gateway.router.served():
        data.append(Model(id=group.name, created=created, owned_by=group.provider_kind))
        for variant in await _variants(group):
            model_id = group.name[:-1] + variant
            data.append(Model(id=model_id, created=created, owned_by=group.provider_kind))
    return Response(ModelList(data=data).model_dump_json(), media_type="application/json")


async def _variants(group: Group) -> list[str]:
    """What a wildcard route offers, for providers that can say (VLM Run's domains)."""
    variants = getattr(group.deployments[0].provider, "variants", None)
    if not group.name.endswith("/*") or variants is None:
        return []
    try:
        listed: list[str] = await variants()
    except GatewayError as exc:
        logger.warning("could not list the models behind %s: %s", group.name, exc.message)
        return []
    return listed


@router.get("/v1/models/{model_id:path}")
@router.get("/models/{model_id:path}", include_in_schema=False)
async def retrieve_model(model_id: str, _: KeyDep, gateway: GatewayDep) -> Response:
    owner = gateway.router.owner(model_id)
    if owner is None:
        raise ModelNotFound(
            f"the model {shortened(model_id)!r} does not exist or is not enabled", param="model"
        )
    model = Model(id=model_id, created=gateway.started_at, owned_by=owner)
    return Response(model.model_dump_json(), media_type="application/json")
