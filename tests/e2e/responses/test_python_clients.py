"""Python agent frameworks on their default Responses API paths, against the real gateway: the
OpenAI Agents SDK (an image and a function tool round trip) and pydantic-ai's
`OpenAIResponsesModel` (text, images by URL and by bytes, structured output)."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agents import (
    Agent,
    MultiProvider,
    RunConfig,
    Runner,
    UserError,
    function_tool,
    set_default_openai_api,
    set_default_openai_client,
    set_tracing_disabled,
)
from openai import AsyncOpenAI
from pydantic import BaseModel
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import BinaryContent, ImageUrl, NativeOutput
from pydantic_ai.models.openai import OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.e2e.clients import async_sdk
from tests.e2e.deployments import entry, png_bytes
from tests.e2e.fakes.openai_compat import Reply, ToolCall
from tests.e2e.responses.conftest import Fakes, StartAll
from tests.e2e.responses.helpers import RED_SQUARE

pytestmark = pytest.mark.e2e

SUNNY = "It is sunny in Paris, and the picture shows a red square."
README = Path(__file__).parents[3] / "README.md"


@pytest.fixture
async def agents_sdk(all_gateway: str) -> AsyncIterator[None]:
    """The Agents SDK's default client pointed at the gateway, tracing off (no network)."""
    set_tracing_disabled(True)
    set_default_openai_api("responses")
    async with async_sdk(all_gateway) as client:
        set_default_openai_client(client, use_for_tracing=False)
        yield


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.mark.anyio
@pytest.mark.usefixtures("agents_sdk")
async def test_an_agent_with_an_image_and_a_tool_round_trip(fakes: Fakes) -> None:
    upstream = fakes["openai"]
    call = ToolCall("call_agent_1", "get_weather", '{"city": "Paris"}')
    upstream.script("upstream-vision", Reply(text="", tool_calls=[call]), Reply(text=SUNNY))
    agent = Agent(
        name="looker",
        instructions="Answer about the image.",
        model="openai",
        tools=[get_weather],
    )

    result = await Runner.run(
        agent,
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this, and the weather in Paris?"},
                    {"type": "input_image", "image_url": RED_SQUARE, "detail": "auto"},
                ],
            }
        ],
    )

    assert result.final_output == SUNNY
    first, second = (received.body for received in upstream.received)
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert first["messages"][0] == {"role": "system", "content": "Answer about the image."}
    assert first["messages"][1]["content"][1]["image_url"]["url"] == RED_SQUARE
    roles = [message["role"] for message in second["messages"]]
    assert roles == ["system", "user", "assistant", "tool"]
    assert second["messages"][1]["content"][1]["image_url"]["url"] == RED_SQUARE
    assert second["messages"][2]["tool_calls"][0]["id"] == "call_agent_1"
    assert second["messages"][3] == {
        "role": "tool",
        "tool_call_id": "call_agent_1",
        "content": "sunny in Paris",
    }


@pytest.mark.anyio
@pytest.mark.usefixtures("agents_sdk")
async def test_a_streamed_agent_run(fakes: Fakes) -> None:
    agent = Agent(name="looker", model="openai")

    streamed = Runner.run_streamed(agent, "Describe a red square.")
    kinds = [event.type async for event in streamed.stream_events()]

    assert streamed.final_output == "A red square on a white background."
    assert "raw_response_event" in kinds
    assert fakes["openai"].received[0].body["stream"] is True


@pytest.fixture
async def pydantic_model(all_gateway: str) -> AsyncIterator[OpenAIResponsesModel]:
    """pydantic-ai's Responses model with an `openai:`-style provider aimed at the gateway."""
    provider = OpenAIProvider(base_url=f"{all_gateway}/v1", api_key="test")
    async with provider.client:
        yield OpenAIResponsesModel("openai", provider=provider)


@pytest.mark.anyio
async def test_pydantic_ai_text_and_images(
    pydantic_model: OpenAIResponsesModel, fakes: Fakes
) -> None:
    agent = PydanticAgent(pydantic_model, instructions="Be brief.")
    image = fakes["images"].put("square.png", png_bytes(16, 12))

    text = await agent.run("Say something.")
    by_url = await agent.run(["What is this?", ImageUrl(url=image)])
    by_bytes = await agent.run(
        ["And this?", BinaryContent(data=png_bytes(8, 8, "green"), media_type="image/png")]
    )

    assert text.output == by_url.output == by_bytes.output == "A red square on a white background."
    sent = [received.body["messages"] for received in fakes["openai"].received]
    assert "Say something." in json.dumps(sent[0][-1]["content"])
    url_parts = sent[1][-1]["content"]
    assert {"type": "image_url", "image_url": {"url": image, "detail": "auto"}} in url_parts
    bytes_parts = [p for p in sent[2][-1]["content"] if p["type"] == "image_url"]
    assert bytes_parts[0]["image_url"]["url"].startswith("data:image/png;base64,")


class Caption(BaseModel):
    caption: str
    colors: list[str]


@pytest.mark.anyio
async def test_pydantic_ai_structured_output(
    pydantic_model: OpenAIResponsesModel, fakes: Fakes
) -> None:
    answer = {"caption": "A red square.", "colors": ["red"]}
    fakes["openai"].script("upstream-vision", Reply(text=json.dumps(answer)))
    agent = PydanticAgent(pydantic_model, output_type=NativeOutput(Caption))

    result = await agent.run(["Caption it.", ImageUrl(url="https://example.com/square.png")])

    assert result.output == Caption(**answer)
    format_ = fakes["openai"].received[0].body["response_format"]
    assert format_["type"] == "json_schema"
    assert format_["json_schema"]["schema"]["properties"]["colors"]["type"] == "array"


# The Agents SDK reads a model name with a `/` as `provider/model`: a gateway model named
# `team/vision` (a `prefix/*` family's member, say) is asked for as `openai/team/vision`, or
# through a `MultiProvider` that passes an unknown prefix on as part of the model id.


@pytest.fixture
async def team_gateway(start_all: StartAll, fakes: Fakes) -> AsyncIterator[AsyncOpenAI]:
    """A gateway that also serves `team/vision`, as the Agents SDK's default client."""
    url = start_all(entry("team/vision", fakes["openai"], upstream_model="team-upstream"))
    set_tracing_disabled(True)
    set_default_openai_api("responses")
    async with async_sdk(url) as client:
        set_default_openai_client(client, use_for_tracing=False)
        yield client


@pytest.mark.anyio
@pytest.mark.usefixtures("team_gateway")
async def test_a_model_name_with_a_slash_is_the_agents_sdks_provider_prefix(fakes: Fakes) -> None:
    agent = Agent(name="looker", model="team/vision")

    with pytest.raises(UserError, match="team"):
        await Runner.run(agent, "Describe a red square.")

    assert fakes["openai"].received == []


@pytest.mark.anyio
@pytest.mark.usefixtures("team_gateway")
async def test_openai_slash_then_the_gateways_name_reaches_it(fakes: Fakes) -> None:
    agent = Agent(name="looker", model="openai/team/vision")

    result = await Runner.run(agent, "Describe a red square.")

    assert result.final_output == "A red square on a white background."
    [sent] = fakes["openai"].received
    assert sent.model == "team-upstream"


@pytest.mark.anyio
async def test_a_multi_provider_passing_unknown_prefixes_on_reaches_it(
    team_gateway: AsyncOpenAI, fakes: Fakes
) -> None:
    provider = MultiProvider(openai_client=team_gateway, unknown_prefix_mode="model_id")
    agent = Agent(name="looker", model="team/vision")

    result = await Runner.run(
        agent, "Describe a red square.", run_config=RunConfig(model_provider=provider)
    )

    assert result.final_output == "A red square on a white background."
    [sent] = fakes["openai"].received
    assert sent.model == "team-upstream"


def readme_recipe(heading: str, imports: str) -> str:
    """The README's Python block under `heading` that imports from `imports`, as written."""
    text = README.read_text()
    section = text[text.index(heading) :]
    section = section[: section.index("\n### ", 1)]
    blocks = re.findall(r"\n( *)```python\n(.*?)\n\1```", section, re.DOTALL)
    [code] = [textwrap.dedent(body) for _, body in blocks if f"from {imports}" in body]
    return code


def test_the_readmes_agents_sdk_recipe_runs_as_written(
    start_all: StartAll, fakes: Fakes, capsys: pytest.CaptureFixture[str]
) -> None:
    url = start_all(entry("aimlapi/*", fakes["openai"]))
    code = readme_recipe("### Clients and their quirks", "agents")

    exec(compile(code.replace("http://localhost:8080", url), "README.md", "exec"), {})

    assert capsys.readouterr().out == "A red square on a white background.\n" * 2
    assert [received.model for received in fakes["openai"].received] == ["gpt-4o-mini"] * 2
