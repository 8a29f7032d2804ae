"""`/docs` in Chromium with nothing but the gateway reachable: Swagger UI renders this API."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

pytestmark = pytest.mark.e2e


def test_the_docs_page_works_with_nothing_but_the_gateway_reachable(
    page: Page, gateway: str
) -> None:
    elsewhere: list[str] = []

    def only_the_gateway(route: Route) -> None:
        if route.request.url.startswith(gateway + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_gateway)
    page.goto(f"{gateway}/docs")
    page.locator(".swagger-ui .info .title", has_text="vision-gateway").wait_for()
    page.get_by_text("/v1/chat/completions", exact=True).first.wait_for()

    assert elsewhere == []
    html = httpx.get(f"{gateway}/docs", timeout=10).text
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == [
        "/docs/swagger-ui.css",
        "/docs/favicon-32x32.png",
        "/docs/swagger-ui-bundle.js",
    ]


def test_the_docs_files_are_served_and_nothing_else_is(gateway: str) -> None:
    bundle = httpx.get(f"{gateway}/docs/swagger-ui-bundle.js", timeout=10)
    other = httpx.get(f"{gateway}/docs/LICENSE", timeout=10)

    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in bundle.content
    assert other.status_code == 404
