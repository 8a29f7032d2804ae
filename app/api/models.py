"""GET /v1/models and /v1/models/{id}: the served model ids, families expanded where the
upstream can say what they hold, and described apart where it can't."""

from __future__ import annotations

import logging

from starlette.responses import Response

from app.api.endpoints import Incoming
from app.api.replies import JSON
from app.errors import GatewayError, ModelNotFound
from app.errors.quoting import shortened
from app.service.routing import Group
from app.wire.schemas import Model, ModelFamily, ModelList

logger = logging.getLogger(__name__)


async def list_models(incoming: Incoming) -> Response:
    """What the caller's key may use: a key limited to some models sees only those."""
    gateway, key = incoming.gateway, incoming.key
    created, data, families = gateway.started_at, [], []
    for group in gateway.router.served():
        owner = group.provider_kind
        if not group.pattern.is_family:
            if gateway.may_use(key, group.name):
                data.append(Model(id=group.name, created=created, owned_by=owner))
            continue
        ids = [group.pattern.member(m) for m in await _members(group)]
        ids = [model_id for model_id in ids if gateway.may_use(key, model_id)]
        if not ids and not gateway.may_use(key, group.name):
            continue  # a family the key may use none of
        data += [Model(id=model_id, created=created, owned_by=owner) for model_id in ids]
        families.append(ModelFamily(pattern=group.name, owned_by=owner, listed=len(ids)))
    listing = ModelList(data=data, x_gateway={"families": families} if families else None)
    return Response(listing.model_dump_json(exclude_none=True), media_type=JSON)


async def _members(group: Group) -> list[str]:
    """What a family offers, for providers that can say (VLM Run's domains, an
    OpenAI-compatible upstream's model list); nothing when the upstream can't answer."""
    provider = group.deployments[0].provider
    if not provider.capabilities.lists_models:
        return []
    try:
        return await provider.list_models()
    except GatewayError as exc:
        logger.warning("could not list the models behind %s: %s", group.name, exc.message)
        return []


async def retrieve_model(incoming: Incoming) -> Response:
    gateway, model_id = incoming.gateway, incoming.params["model_id"]
    owner = gateway.router.owner(model_id)
    if owner is None or not gateway.may_use(incoming.key, model_id):
        raise ModelNotFound(
            f"the model {shortened(model_id)!r} does not exist or is not enabled", param="model"
        )
    model = Model(id=model_id, created=gateway.started_at, owned_by=owner)
    return Response(model.model_dump_json(), media_type=JSON)
