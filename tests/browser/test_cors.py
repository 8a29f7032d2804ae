"""A browser app on another origin calling the gateway with the `openai` JS SDK, in Chromium:
what `server.cors` lets through, and what the browser keeps from a page it does not list."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.browser.conftest import VIEWPORT
from tests.conftest import config_tree, skip_unless_ci
from tests.e2e.responses.helpers import RED_SQUARE
from tests.e2e.servers import serve_in_thread
from tests.processes import Gateways

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e

SDK = Path(__file__).parents[1] / "clients" / "openai-js"
GATEWAY_KEY = "gw-cors-browser-5e2a9c"
# The app: the SDK as an ES module from its own package, and one call of each kind.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>a browser app</title></head><body>
<script type="module">
import OpenAI from "/openai/index.mjs";
const image = "IMAGE";
const messages = [{ role: "user", content: [
  { type: "text", text: "What is this?" },
  { type: "image_url", image_url: { url: image } },
] }];
window.callGateway = async (baseURL, apiKey) => {
  const client = new OpenAI({ baseURL, apiKey, dangerouslyAllowBrowser: true, maxRetries: 0 });
  try {
    const models = await client.models.list();
    const { data, response } = await client.chat.completions
      .create({ model: "inspect", messages }).withResponse();
    let streamed = "";
    const stream = await client.chat.completions
      .create({ model: "inspect", messages, stream: true });
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? "";
    const answer = await client.responses.create({ model: "inspect", input: "Hello" });
    return {
      models: models.data.map((model) => model.id),
      content: data.choices[0].message.content,
      requestId: response.headers.get("x-request-id"),
      overheadMs: response.headers.get("x-gateway-overhead-ms"),
      streamed,
      responseText: answer.output_text,
    };
  } catch (error) {
    return { error: error.constructor.name, status: error.status ?? null, message: error.message };
  }
};
window.ready = true;
</script></body></html>
""".replace("IMAGE", RED_SQUARE)


@pytest.fixture(scope="module")
def openai_js() -> Path:
    """The pinned `openai` package, installed from its lock file (`npm ci`)."""
    npm = shutil.which("npm")
    if npm is None:
        skip_unless_ci("npm is not installed (apt-get install npm)", "browser")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=SDK,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci in tests/clients/openai-js failed:\n{done.stderr[-2000:]}")
    return SDK / "node_modules" / "openai"


def app_site(package: Path) -> Starlette:
    """The browser app's own origin: its page, and the SDK's files."""

    async def page(_: Request) -> Response:
        return HTMLResponse(PAGE)

    async def sdk_file(request: Request) -> Response:
        path = (package / request.path_params["path"]).resolve()
        if package not in path.parents or path.suffix not in (".mjs", ".js") or not path.is_file():
            return Response(status_code=404)
        return Response(path.read_bytes(), media_type="text/javascript")

    return Starlette(routes=[Route("/", page), Route("/openai/{path:path}", sdk_file)])


@pytest.fixture(scope="module")
def site(openai_js: Path) -> Iterator[str]:
    """The URL of the browser app, on an origin of its own (a port other than the gateway's)."""
    with serve_in_thread(app_site(openai_js)) as url:
        yield url


@pytest.fixture
def app_page(browser: Browser, site: str) -> Iterator[tuple[Page, list[str]]]:
    """The app open in a fresh tab, and what the browser says on its console."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    console: list[str] = []
    tab.on("console", lambda message: console.append(message.text))
    tab.on("pageerror", lambda error: console.append(f"uncaught: {error}"))
    try:
        tab.goto(site)
        tab.wait_for_function("window.ready === true", timeout=10_000)
        yield tab, console
    finally:
        context.close()


def call(page: Page, gateway: str, key: str = GATEWAY_KEY) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        "([url, key]) => window.callGateway(url, key)", [f"{gateway}/v1", key]
    )
    return result


def start(gateways: Gateways, **server: Any) -> str:
    config = config_tree(server={"api_keys": [GATEWAY_KEY], **server})
    return gateways.start(config).url


@pytest.mark.parametrize("listed", ["origin", "*"])
def test_an_allowed_origin_uses_every_call_of_the_sdk(
    app_page: tuple[Page, list[str]], site: str, gateways: Gateways, listed: str
) -> None:
    page, console = app_page
    gateway = start(gateways, cors=[site if listed == "origin" else "*"])

    result = call(page, gateway)

    assert "error" not in result, result
    assert result["models"] == ["inspect"]
    assert "1 image(s)" in result["content"]
    assert result["streamed"] == result["content"]
    assert "prompt" in result["responseText"]
    assert len(result["requestId"]) == 32  # the gateway's own id, readable by the page
    assert float(result["overheadMs"]) >= 0
    assert [line for line in console if "CORS" in line] == []


def test_a_refusal_reaches_the_page_as_the_sdk_error_it_is(
    app_page: tuple[Page, list[str]], site: str, gateways: Gateways
) -> None:
    page, _ = app_page
    gateway = start(gateways, cors=[site])

    result = call(page, gateway, key="not-the-key")

    assert result["error"] == "AuthenticationError"
    assert result["status"] == 401


@pytest.mark.parametrize(
    "cors", [pytest.param([], id="no origin listed"), ["https://elsewhere.example"]]
)
def test_an_origin_not_listed_is_kept_out_by_the_browser(
    app_page: tuple[Page, list[str]], gateways: Gateways, cors: list[str]
) -> None:
    page, console = app_page
    gateway = start(gateways, cors=cors)

    result = call(page, gateway)

    assert result["error"] == "APIConnectionError"
    assert any("blocked by CORS policy" in line for line in console), console
