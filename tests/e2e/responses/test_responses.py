"""The Responses API through the `openai` SDK against a real gateway and an OpenAI-compatible
upstream: create (sync, async, streamed two ways), what the upstream is asked, and the answer."""

from __future__ import annotations

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.e2e.deployments import IMAGE_URL
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.e2e.responses.conftest import Fakes
from tests.e2e.responses.helpers import (
    QUESTION,
    RED_SQUARE,
    TEXT_EVENTS_HEAD,
    TEXT_EVENTS_TAIL,
    ask,
    assert_sequence_increases,
    raw_events,
    text_event_order,
)

pytestmark = pytest.mark.e2e

ANSWER = "A red square on a white background."


def upstream_image_parts(fake: FakeUpstream, request: int = -1) -> list[dict[str, object]]:
    messages = fake.received[request].body["messages"]
    return [
        part
        for message in messages
        if isinstance(message["content"], list)
        for part in message["content"]
        if part["type"] == "image_url"
    ]


def test_create_with_a_data_uri_image(sync_client: openai.OpenAI, fakes: Fakes) -> None:
    upstream: FakeUpstream = fakes["openai"]

    response = sync_client.responses.create(
        model="openai",
        input=ask(QUESTION, RED_SQUARE),
        instructions="Be brief.",
        max_output_tokens=50,
        temperature=0.2,
    )

    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.model == "openai"
    assert response.output_text == ANSWER
    [message] = response.output
    assert message.type == "message"
    assert message.id.startswith("msg_")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 7)
    assert response.usage.total_tokens == 19
    assert response.instructions == "Be brief."
    assert response.temperature == 0.2
    [sent] = upstream.received
    assert sent.body["model"] == "upstream-vision"
    assert sent.body["max_completion_tokens"] == 50
    assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
    user = sent.body["messages"][1]
    assert user["role"] == "user"
    assert user["content"][0] == {"type": "text", "text": QUESTION}
    [image] = upstream_image_parts(upstream)
    assert image["image_url"]["url"].startswith("data:image/png;base64,")  # type: ignore[index]


@pytest.mark.anyio
async def test_async_create_with_an_image_url(
    async_responses_client: openai.AsyncOpenAI, fakes: Fakes
) -> None:
    response = await async_responses_client.responses.create(
        model="openai",
        input=ask(QUESTION, IMAGE_URL, detail="low"),
    )

    assert response.output_text == ANSWER
    [image] = upstream_image_parts(fakes["openai"])
    assert image["image_url"] == {"url": IMAGE_URL, "detail": "low"}


def test_a_string_input_is_one_user_message(sync_client: openai.OpenAI, fakes: Fakes) -> None:
    response = sync_client.responses.create(model="openai", input="Say hi.")

    assert response.output_text == ANSWER
    assert fakes["openai"].received[0].body["messages"] == [{"role": "user", "content": "Say hi."}]


def test_responses_stream_helper_gives_openais_event_order(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    with sync_client.responses.stream(
        model="openai",
        input=ask(QUESTION, RED_SQUARE),
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()

    types = [event.type for event in events]
    assert text_event_order(types) == [
        *TEXT_EVENTS_HEAD,
        "response.output_text.delta",
        *TEXT_EVENTS_TAIL,
        "response.completed",
    ]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 1
    assert "".join(deltas) == ANSWER
    assert_sequence_increases(list(events))
    assert final.output_text == ANSWER
    assert final.status == "completed"
    assert final.usage is not None
    assert final.usage.input_tokens == 12
    [sent] = fakes["openai"].received
    assert sent.body["stream"] is True
    assert len(upstream_image_parts(fakes["openai"])) == 1


def test_stream_true_over_raw_http_names_each_event_and_sends_no_done(all_gateway: str) -> None:
    body = {"model": "openai", "input": ask(QUESTION, IMAGE_URL), "stream": True}

    response = httpx.post(f"{all_gateway}/v1/responses", json=body, timeout=10)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "[DONE]" not in response.text
    events, _ = raw_events(response)
    assert_sequence_increases(events)
    assert events[0]["sequence_number"] == 0
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == ANSWER


def test_stream_true_with_the_sdk(sync_client: openai.OpenAI) -> None:
    stream = sync_client.responses.create(
        model="openai",
        input=ask(QUESTION, RED_SQUARE),
        stream=True,
    )
    with stream:
        events = list(stream)

    assert events[0].type == "response.created"
    assert events[0].response.status == "in_progress"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == ANSWER
    assert_sequence_increases(list(events))


def test_hitting_max_output_tokens_is_incomplete_with_the_reason(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    fakes["openai"].script("upstream-vision", Reply(text="A red", finish_reason="length"))

    response = sync_client.responses.create(model="openai", input="Describe.", max_output_tokens=2)

    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "A red"
    assert fakes["openai"].received[0].body["max_completion_tokens"] == 2


def test_a_streamed_answer_cut_short_ends_with_response_incomplete(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    fakes["openai"].script("upstream-vision", Reply(text="A red", finish_reason="length"))

    with sync_client.responses.stream(
        model="openai", input="Describe.", max_output_tokens=2
    ) as stream:
        events = list(stream)

    assert events[-1].type == "response.incomplete"
    final = events[-1].response
    assert final.status == "incomplete"
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_output_tokens"


class Caption(BaseModel):
    caption: str
    colors: list[str]


def test_text_format_json_schema_becomes_response_format(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    answer = '{"caption": "A red square.", "colors": ["red"]}'
    fakes["openai"].script("upstream-vision", Reply(text=answer))

    parsed = sync_client.responses.parse(
        model="openai",
        input=ask("Caption it.", RED_SQUARE),
        text_format=Caption,
    )

    assert parsed.output_parsed == Caption(caption="A red square.", colors=["red"])
    sent = fakes["openai"].received[0].body["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "Caption"
    assert sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["schema"]["properties"]["colors"]["type"] == "array"
    assert parsed.text is not None
    assert parsed.text.format is not None
    assert parsed.text.format.type == "json_schema"


def test_json_object_format_and_sampling_settings_reach_the_upstream(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    fakes["openai"].script("upstream-vision", Reply(text='{"ok": true}'))

    sync_client.responses.create(
        model="openai",
        input="Answer in JSON.",
        text={"format": {"type": "json_object"}},
        top_p=0.5,
        user="user-7",
        metadata={"ticket": "42"},
    )

    sent = fakes["openai"].received[0].body
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["top_p"] == 0.5
    assert sent["user"] == "user-7"
