"""The Vercel AI SDK's default `openai(model)` (which calls the Responses API), v6 and v7, run
by Node against the real gateway: `generateText` and `streamText`, each with an image."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import skip_unless_ci
from tests.e2e.fakes.openai_compat import Reply
from tests.e2e.responses.conftest import Fakes
from tests.e2e.responses.helpers import RED_SQUARE
from tests.e2e.test_accounting import scrape, wait_for
from tests.ops.traffic import metric_value

pytestmark = pytest.mark.e2e

CLIENTS = Path(__file__).parents[2] / "clients"
VERSIONS = ("ai-v6", "ai-v7")
IMAGE_URL = "https://images.example.invalid/square.png"
ANSWER = "A red square on a white background."


@pytest.fixture(scope="session")
def node_clients() -> Path:
    """The pinned SDK versions installed from their lock files (`npm ci`) once a session."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        skip_unless_ci("node and npm are not installed (apt-get install nodejs npm)", "Node")
    for version in VERSIONS:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=CLIENTS / version,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in tests/clients/{version} failed:\n{done.stderr[-2000:]}")
    return CLIENTS


def run_client(clients: Path, version: str, url: str, model: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(clients / version / "run.mjs"), url, model, RED_SQUARE, IMAGE_URL],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("version", VERSIONS)
def test_generate_and_stream_text_with_an_image(
    node_clients: Path, all_gateway: str, fakes: Fakes, version: str
) -> None:
    upstream = fakes["openai"]
    upstream.script("upstream-vision", Reply(text=ANSWER, usage=(30, 9)))

    result = run_client(node_clients, version, all_gateway, "openai")

    assert result["errors"] == []
    assert result["generated"] == ANSWER
    assert result["generatedUsage"]["inputTokens"] == 30
    assert len(result["deltas"]) > 1
    assert "".join(result["deltas"]) == result["streamedText"] == ANSWER
    assert result["streamedUsage"]["outputTokens"] == 9
    generated, streamed = (received.body for received in upstream.received)
    assert generated["messages"][-1]["content"][1]["image_url"]["url"] == RED_SQUARE
    assert streamed["stream"] is True
    assert streamed["messages"][-1]["content"][1]["image_url"]["url"] == IMAGE_URL
    wait_for(lambda: metric_value(scrape(all_gateway), "gateway_requests_total") == 2)
    text = scrape(all_gateway)
    assert metric_value(text, "gateway_requests_total", api="responses", status="200") == 2
