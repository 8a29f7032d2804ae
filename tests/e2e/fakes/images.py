"""A web server on loopback holding client images, for the gateway to fetch."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class ImageHost:
    """A web server holding client images: `GET /images/{name}`, with a declared content type."""

    def __init__(self) -> None:
        self.url = ""
        self.images: dict[str, tuple[bytes, str]] = {}
        self.fetched: list[str] = []
        self.app = Starlette(routes=[Route("/images/{name}", self._image, methods=["GET"])])

    def put(self, name: str, data: bytes, content_type: str = "image/png") -> str:
        """Hold an image and give its URL."""
        self.images[name] = (data, content_type)
        return f"{self.url}/images/{name}"

    def reset(self) -> None:
        self.images.clear()
        self.fetched.clear()

    async def _image(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.fetched.append(name)
        if name not in self.images:
            return Response(b"no such image", status_code=404, media_type="text/plain")
        data, content_type = self.images[name]
        return Response(data, media_type=content_type)
