"""`developer` messages, newer clients' name for system instructions, reach an upstream that
knows only `system` as `system`."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.providers.deployments import QUESTION, ask, data_uri, image_bytes
from tests.e2e.providers.fakes import FakePredictionGuard

pytestmark = pytest.mark.e2e

INSTRUCTIONS = "Answer in one short sentence."


def with_developer(*image_urls: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "developer", "content": INSTRUCTIONS}, *ask(QUESTION, *image_urls)]


def test_prediction_guard_gets_a_developer_message_as_system(
    pg_client: openai.OpenAI, pg: FakePredictionGuard
) -> None:
    image = data_uri(image_bytes("PNG"), "image/png")

    completion = pg_client.chat.completions.create(
        model="pg-vision", messages=with_developer(image)
    )

    assert completion.choices[0].message.content
    [received] = pg.received
    assert received.refused is None
    assert received.json is not None
    system, user = received.json["messages"]
    assert system == {"role": "system", "content": INSTRUCTIONS}
    assert user["role"] == "user"


def test_prediction_guard_streams_text_after_a_developer_message(
    pg_client: openai.OpenAI, pg: FakePredictionGuard
) -> None:
    stream = pg_client.chat.completions.create(
        model="pg-vision", messages=with_developer(), stream=True
    )

    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    [received] = pg.received
    assert received.json is not None
    assert [m["role"] for m in received.json["messages"]] == ["system", "user"]
