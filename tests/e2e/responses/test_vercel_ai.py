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
from tests.e2e.fakes.openai_compat import Reply, ToolCall
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


def run_client(
    clients: Path, version: str, url: str, model: str, script: str = "run.mjs"
) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    args = [url, model, RED_SQUARE, IMAGE_URL] if script == "run.mjs" else [url, model]
    done = subprocess.run(
        [node, str(clients / version / script), *args],
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


def plain(message: dict[str, Any]) -> dict[str, Any]:
    """A chat message with its text parts as one string, as the tests compare them."""
    content = message.get("content")
    if isinstance(content, list):
        message = {**message, "content": "".join(part["text"] for part in content)}
    return message


WEATHER = ToolCall("call_weather_paris", "weather", '{"city":"Paris"}')


@pytest.mark.parametrize("version", VERSIONS)
def test_turns_and_tool_loops_send_earlier_output_as_item_references(
    node_clients: Path, all_gateway: str, fakes: Fakes, version: str
) -> None:
    upstream = fakes["openai"]
    streamed_call = ToolCall("call_weather_lyon", "weather", '{"city":"Paris"}')
    upstream.script(
        "upstream-vision",
        Reply(text="A red square."),
        Reply(text="Red."),
        Reply(text="You are welcome."),
        Reply(text="Let me look that up.", tool_calls=[WEATHER]),
        Reply(text="It is sunny in Paris."),
        Reply(text="Let me look that up.", tool_calls=[streamed_call]),
        Reply(text="Sunny, in Paris."),
    )

    result = run_client(node_clients, version, all_gateway, "openai", "turns.mjs")

    assert result["texts"] == ["A red square.", "Red.", "You are welcome."]
    assert result["generatedLoop"] == {"text": "It is sunny in Paris.", "steps": 2}
    assert result["streamedLoop"] == {"text": "Sunny, in Paris.", "steps": 2}
    assert result["called"] == ["Paris", "Paris"]
    # What the SDK sent: its earlier output by reference, in every later turn and step 2.
    references = [
        [item for item in body["input"] if item.get("type") == "item_reference"]
        for body in result["sent"]
    ]
    assert [len(found) for found in references] == [0, 1, 2, 0, 1, 0, 1]
    # What the upstream was asked: the whole conversation, the referenced output expanded.
    asked = [[plain(m) for m in received.body["messages"]] for received in upstream.received]
    assert asked[1] == [
        {"role": "user", "content": "What is in this image?"},
        {"role": "assistant", "content": "A red square."},
        {"role": "user", "content": "And its colour?"},
    ]
    assert asked[2][-2:] == [
        {"role": "assistant", "content": "Red."},
        {"role": "user", "content": "Thanks."},
    ]
    for step, call in ((asked[4], WEATHER), (asked[6], streamed_call)):
        user, assistant, tool = step
        assert user == {"role": "user", "content": "What is the weather in Paris?"}
        assert assistant == {
            "role": "assistant",
            "content": "Let me look that up.",
            "tool_calls": [call.as_chat()],
        }
        assert tool["role"] == "tool"
        assert tool["tool_call_id"] == call.call_id
        assert "sunny in Paris" in tool["content"]
