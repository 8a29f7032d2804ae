"""GET /playground: a page to try any routed model with images and documents, its files, model
hints, and the pages of a document it is given."""

from __future__ import annotations

from importlib.resources import files

import orjson
from pydantic import ValidationError
from starlette.responses import Response

from app.api.endpoints import Incoming
from app.api.replies import json_reply
from app.errors import InvalidRequest, RouteNotFound
from app.service.gateway import Gateway
from app.service.routing import Group
from app.wire.schemas import FilePart

PAGE = "playground.html"
THUMBNAIL_SIDE = 160
JAVASCRIPT = "text/javascript; charset=utf-8"
ASSETS = {
    "playground.css": "text/css; charset=utf-8",
    "playground.js": JAVASCRIPT,
    "events.js": JAVASCRIPT,
    "inspect.js": JAVASCRIPT,
    "snippets.js": JAVASCRIPT,
    "responses.js": JAVASCRIPT,
}
# The page runs only its own files and talks only to this gateway; previews of image URLs
# the user adds may come from anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: blob: http: https:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def _static(name: str, media_type: str) -> Response:
    text = files("app").joinpath(f"static/{name}").read_text(encoding="utf-8")
    headers = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}
    if name == PAGE:
        headers["content-security-policy"] = CONTENT_SECURITY_POLICY
    return Response(text, media_type=media_type, headers=headers)


def _require_playground(gateway: Gateway) -> None:
    if not gateway.config.server.playground:
        raise RouteNotFound("the playground is turned off (server.playground)")


async def playground(incoming: Incoming) -> Response:
    _require_playground(incoming.gateway)
    return _static(PAGE, "text/html; charset=utf-8")


async def model_hints(incoming: Incoming) -> Response:
    """What the page cannot learn from `/v1/models`: how many images each served name
    (or `prefix/*` family) takes, and whether its answers come from polled jobs."""
    gateway = incoming.gateway
    _require_playground(gateway)
    limit = gateway.config.images.max_images_per_request
    data = [_hint(group, limit) for group in gateway.router.served()]
    return json_reply({"data": data})


def _hint(group: Group, limit: int) -> dict[str, object]:
    providers = [deployment.provider for deployment in group.deployments]
    # A request may land on any deployment of the group: the strictest one decides.
    caps = [p.capabilities.images.max_images for p in providers]
    max_images = min([limit, *(cap for cap in caps if cap is not None)])
    jobs = any(provider.capabilities.jobs for provider in providers)
    return {"id": group.name, "max_images": max_images, "jobs": jobs}


async def document_pages(incoming: Incoming) -> Response:
    """A document the page was given, read as a request would read it (its pages kept for
    that request): `{"file_data": ...}` in, its pages' thumbnails and facts out."""
    gateway = incoming.gateway
    _require_playground(gateway)
    try:
        payload = orjson.loads(incoming.body)
        part = FilePart.model_validate({"type": "file", "file": payload})
    except (orjson.JSONDecodeError, ValidationError):
        raise InvalidRequest('send the document as {"file_data": ...}') from None
    documents = gateway.documents
    document = await documents.read(part, "file_data", max_pages=gateway.config.documents.max_pages)
    thumbnails = await documents.thumbnails(document, THUMBNAIL_SIDE)
    pages = [
        {
            "thumbnail": thumbnail,
            "width": page.width,
            "height": page.height,
            "text_characters": len(page.text),
        }
        for thumbnail, page in zip(thumbnails, document.pages, strict=True)
    ]
    return json_reply({"filename": document.filename, "bytes": document.size, "pages": pages})


async def asset(incoming: Incoming) -> Response:
    _require_playground(incoming.gateway)
    name = incoming.params["name"]
    media_type = ASSETS.get(name)
    if media_type is None:
        raise RouteNotFound(f"the playground has no file {name[:64]!r}")
    return _static(name, media_type)
