"""The README's curl commands, run as written by the real `curl` against `python -m app`
serving the shipped `config.yaml` with no provider key set, as `make run` does on a fresh
machine: what a new user types first answers as the README says."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import skip_unless_ci
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SHELL_BLOCK = re.compile(r"\n```sh\n(.*?)\n```", re.DOTALL)
JSON_BLOCK = re.compile(r"\n```json\n(.*?)\n```", re.DOTALL)


def curl_commands() -> list[str]:
    """Every shell block of the README that is a curl command."""
    return [block for block in SHELL_BLOCK.findall(README) if block.startswith("curl ")]


def run(command: str, gateway: GatewayProcess) -> str:
    finished = subprocess.run(
        ["bash", "-c", command.replace("http://localhost:8080", gateway.url)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


@pytest.fixture
def gateway(gateways: Gateways) -> GatewayProcess:
    if shutil.which("curl") is None:
        skip_unless_ci("curl is not installed (apt-get install curl)", "curl")
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text())
    return gateways.start(shipped)


def test_the_readme_shows_curl_for_both_apis() -> None:
    commands = curl_commands()

    assert [("/v1/chat/completions" in c, "/v1/responses" in c) for c in commands] == [
        (True, False),
        (False, True),
    ]


def test_the_quick_start_chat_answers_as_the_readme_shows(gateway: GatewayProcess) -> None:
    chat = next(c for c in curl_commands() if "/v1/chat/completions" in c)
    shown = json.loads(JSON_BLOCK.findall(README[README.index(chat) :])[0])

    answer = json.loads(run(chat, gateway))

    assert answer["object"] == "chat.completion"
    assert answer["model"] == shown["model"] == "inspect"
    assert answer["choices"][0]["message"] == {
        **shown["choices"][0]["message"],
        "refusal": None,
        "annotations": [],
    }
    assert answer["choices"][0]["finish_reason"] == shown["choices"][0]["finish_reason"]
    assert answer["usage"]["total_tokens"] == shown["usage"]["total_tokens"]


def test_the_streamed_responses_example_streams_events(gateway: GatewayProcess) -> None:
    streamed = next(c for c in curl_commands() if "/v1/responses" in c)

    text = run(streamed, gateway)

    events = re.findall(r"^event: (\S+)$", text, re.MULTILINE)
    data = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert events[0] == "response.created"
    assert events[-1] == "response.completed"
    assert "response.output_text.delta" in events
    assert len(data) == len(events)  # an `event:` line for each, and no `[DONE]`
    [completed] = [d for d in data if d["type"] == "response.completed"]
    output = completed["response"]["output"][0]["content"][0]["text"]
    assert "image 1: data URI, image/png, 4×3, 73 bytes" in output
