"""GET /docs: Swagger UI over `/openapi.json`, its files served by the gateway itself, so the
page works where no CDN can be reached. They are swagger-ui-dist's, as published on npm, in
`app/static/docs/` (`make swagger-ui SWAGGER_UI=<version>` refreshes them)."""

from __future__ import annotations

import functools
from importlib.resources import files

from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import Response

from app.api.endpoints import Incoming
from app.errors import RouteNotFound

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# The files change only with the gateway's release: a browser may keep them a day.
_CACHED = {"cache-control": "public, max-age=86400", "x-content-type-options": "nosniff"}


@functools.cache
def _read(name: str) -> bytes:
    return files("app").joinpath(f"static/docs/{name}").read_bytes()


def docs_page(title: str) -> Response:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=title,
        swagger_js_url="/docs/swagger-ui-bundle.js",
        swagger_css_url="/docs/swagger-ui.css",
        swagger_favicon_url="/docs/favicon-32x32.png",
    )


async def asset(incoming: Incoming) -> Response:
    name = incoming.params["name"]
    media_type = ASSETS.get(name)
    if media_type is None:
        raise RouteNotFound(f"the docs page has no file {name[:64]!r}")
    return Response(_read(name), media_type=media_type, headers=_CACHED)
