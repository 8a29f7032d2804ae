"""Responses API errors speak the Responses API: every field's type is checked as OpenAI
checks it before anything is sent, and `param` names the field of the Responses request."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.e2e.responses.conftest import Fakes
from tests.e2e.responses.helpers import QUESTION, RED_SQUARE, ask

pytestmark = pytest.mark.e2e

TYPE_ERRORS = [
    ({"stream": "yes"}, "stream", "expected a boolean, but got a string"),
    ({"store": "no"}, "store", "expected a boolean, but got a string"),
    ({"max_output_tokens": "100"}, "max_output_tokens", "expected an integer, but got a string"),
    ({"temperature": "hot"}, "temperature", "expected a number, but got a string"),
    ({"parallel_tool_calls": 1}, "parallel_tool_calls", "expected a boolean, but got an integer"),
    ({"instructions": ["Be brief."]}, "instructions", "expected a string, but got an array"),
    ({"metadata": {"team": 7}}, "metadata.team", "expected a string, but got an integer"),
    ({"previous_response_id": 7}, "previous_response_id", "expected a string, but got an integer"),
    (
        {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": 5}]}]},
        "input[0].content[0].image_url",
        "expected a string, but got an integer",
    ),
    (
        {"input": [{"role": "user", "content": 5}]},
        "input[0].content",
        "expected one of a string or an array, but got an integer",
    ),
]


def send(
    client: openai.OpenAI, request: dict[str, Any], extra: dict[str, Any], *, stream: bool
) -> None:
    """`request` with `extra` fields as the SDK sends them, streamed or not."""
    if stream:
        with client.responses.stream(**request, extra_body=extra) as events:
            list(events)
    else:
        client.responses.create(**request, extra_body=extra)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(("fields", "param", "words"), TYPE_ERRORS)
def test_a_field_of_the_wrong_type_is_refused_before_anything_is_sent(
    sync_client: openai.OpenAI,
    fakes: Fakes,
    fields: dict[str, Any],
    param: str,
    words: str,
    stream: bool,
) -> None:
    request: dict[str, Any] = {"model": "openai", "input": ask(QUESTION, RED_SQUARE)}
    request.update(fields if "input" in fields else {})
    extra = {key: value for key, value in fields.items() if key != "input"}

    with pytest.raises(openai.BadRequestError) as raised:
        send(sync_client, request, extra, stream=stream and "stream" not in extra)

    assert raised.value.body == {
        "message": f"Invalid type for '{param}': {words} instead.",
        "type": "invalid_request_error",
        "param": param,
        "code": "invalid_type",
    }
    assert fakes["openai"].received == []


def test_a_value_not_allowed_is_refused_listing_the_allowed_ones(
    sync_client: openai.OpenAI,
) -> None:
    robot: Any = [{"role": "robot", "content": "Hi."}]

    with pytest.raises(openai.BadRequestError) as raised:
        sync_client.responses.create(model="openai", input=robot)

    assert raised.value.body == {
        "message": "Invalid value: 'robot'. Supported values are: 'user', 'assistant', "
        "'system', and 'developer'.",
        "type": "invalid_request_error",
        "param": "input[0].role",
        "code": "invalid_value",
    }


def test_a_missing_field_is_a_missing_required_parameter(sync_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sync_client.post("/responses", body={"input": "Hi."}, cast_to=object)

    assert raised.value.body == {
        "message": "Missing required parameter: 'model'.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "missing_required_parameter",
    }


NOT_AN_IMAGE = "data:image/png;base64,aGVsbG8gd29ybGQ="


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_bad_image_is_named_by_its_place_in_input(
    sync_client: openai.OpenAI, fakes: Fakes, stream: bool
) -> None:
    first = sync_client.responses.create(model="openai", input="Hello.", instructions="Be brief.")
    fakes["openai"].received.clear()
    request: dict[str, Any] = {
        "model": "openai",
        "instructions": "Be brief.",
        "previous_response_id": first.id,
        "input": [
            {"role": "user", "content": "Look at this."},
            *ask(QUESTION, RED_SQUARE, NOT_AN_IMAGE),
        ],
    }

    with pytest.raises(openai.BadRequestError) as raised:
        send(sync_client, request, {}, stream=stream)

    assert raised.value.code == "invalid_image"
    # The chat request had the instructions, two stored messages and this turn's first
    # message before it: messages[4].content[2].image_url.
    assert raised.value.param == "input[1].content[2].image_url"
    assert fakes["openai"].received == []


def test_too_many_images_names_the_first_image_past_the_limit(sync_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sync_client.responses.create(
            model="takeoff",
            instructions="Be brief.",
            input=ask(QUESTION, RED_SQUARE, RED_SQUARE),
        )

    assert raised.value.code == "too_many_images"
    assert raised.value.param == "input[0].content[2].image_url"
