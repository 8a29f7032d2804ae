"""Stored responses through the `openai` SDK: retrieve, input items, delete, continuing with
`previous_response_id` (earlier images included), `store: false`, and ownership by key."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import MakeClient, StartGateway
from tests.e2e.envelope import assert_error
from tests.e2e.fakes.openai_compat import Reply, ToolCall
from tests.e2e.responses.conftest import Fakes, StartAll
from tests.e2e.responses.helpers import QUESTION, RED_SQUARE, ask

pytestmark = pytest.mark.e2e

TEAM_A = {"key": "sk-gw-resp-team-a-51c0", "name": "team-a"}
TEAM_B = {"key": "sk-gw-resp-team-b-93de", "name": "team-b"}
SKY_TOOL: Any = {
    "type": "function",
    "name": "sky_colour",
    "description": "The colour of the sky somewhere.",
    "parameters": {"type": "object", "properties": {"place": {"type": "string"}}},
}


def not_found(call: Any, param: str | None = None) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        call()
    error = raised.value.body
    assert isinstance(error, dict)
    assert error["code"] == "response_not_found"
    assert error["param"] == param


def test_retrieve_input_items_and_delete(sync_client: openai.OpenAI) -> None:
    created = sync_client.responses.create(
        model="openai",
        input=ask(QUESTION, RED_SQUARE),
        metadata={"case": "stored"},
    )

    fetched = sync_client.responses.retrieve(created.id)
    assert fetched.id == created.id
    assert fetched.output_text == created.output_text
    assert fetched.metadata == {"case": "stored"}
    items = sync_client.responses.input_items.list(created.id)
    [message] = items.data
    assert message.type == "message"
    assert message.role == "user"
    text, image = message.content
    assert text.type == "input_text"
    assert text.text == QUESTION
    assert image.type == "input_image"
    assert image.image_url == RED_SQUARE

    sync_client.responses.delete(created.id)

    not_found(lambda: sync_client.responses.retrieve(created.id))
    not_found(lambda: sync_client.responses.input_items.list(created.id))
    not_found(lambda: sync_client.responses.delete(created.id))


def test_previous_response_id_sends_the_earlier_turns_and_their_image(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    upstream = fakes["openai"]
    upstream.script("upstream-vision", Reply(text="A red square."), Reply(text="Red."))
    first = sync_client.responses.create(
        model="openai",
        input=ask(QUESTION, RED_SQUARE),
        instructions="Be brief.",
    )

    second = sync_client.responses.create(
        model="openai",
        input="What colour is it?",
        previous_response_id=first.id,
        instructions="Be brief.",
    )

    assert second.output_text == "Red."
    assert second.previous_response_id == first.id
    messages = upstream.received[1].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1] == upstream.received[0].body["messages"][1]  # the image went again
    assert messages[1]["content"][1]["image_url"]["url"] == RED_SQUARE
    assert messages[2]["content"] == "A red square."
    assert messages[3] == {"role": "user", "content": "What colour is it?"}


def test_a_streamed_response_is_stored_and_continued(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    with sync_client.responses.stream(
        model="openai",
        input=ask(QUESTION, RED_SQUARE),
    ) as stream:
        first = stream.get_final_response()

    assert sync_client.responses.retrieve(first.id).output_text == first.output_text
    sync_client.responses.create(model="openai", input="And?", previous_response_id=first.id)
    messages = fakes["openai"].received[1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == first.output_text


def test_store_false_keeps_nothing(sync_client: openai.OpenAI) -> None:
    response = sync_client.responses.create(model="openai", input="Hi.", store=False)

    assert (response.model_extra or {})["store"] is False
    not_found(lambda: sync_client.responses.retrieve(response.id))
    not_found(
        lambda: sync_client.responses.create(
            model="openai", input="And?", previous_response_id=response.id
        ),
        param="previous_response_id",
    )


def test_unknown_ids_are_response_not_found(all_gateway: str) -> None:
    with httpx.Client(base_url=all_gateway, timeout=10) as http:
        for method, path in [
            ("GET", "/v1/responses/resp_nothing"),
            ("DELETE", "/v1/responses/resp_nothing"),
            ("GET", "/v1/responses/resp_nothing/input_items"),
            ("GET", "/responses/resp_nothing"),
        ]:
            answer = http.request(method, path)
            assert_error(answer, 404, "invalid_request_error", "response_not_found", param=None)
        continued = http.post(
            "/v1/responses",
            json={"model": "openai", "input": "Hi.", "previous_response_id": "resp_nothing"},
        )
        assert_error(
            continued,
            404,
            "invalid_request_error",
            "response_not_found",
            param="previous_response_id",
        )


def test_a_key_sees_only_its_own_responses(
    start_all: StartAll, make_client: MakeClient, fakes: Fakes
) -> None:
    url = start_all(server={"api_keys": [TEAM_A, TEAM_B]})
    team_a = make_client(url, api_key=TEAM_A["key"])
    team_b = make_client(url, api_key=TEAM_B["key"])
    mine = team_a.responses.create(model="openai", input="Private question.")

    not_found(lambda: team_b.responses.retrieve(mine.id))
    not_found(lambda: team_b.responses.input_items.list(mine.id))
    not_found(lambda: team_b.responses.delete(mine.id))
    not_found(
        lambda: team_b.responses.create(model="openai", input="?", previous_response_id=mine.id),
        param="previous_response_id",
    )

    assert team_a.responses.retrieve(mine.id).id == mine.id
    assert len(fakes["openai"].received) == 1  # the refused continuation never went upstream


def test_a_key_that_fills_its_share_keeps_no_other_key_from_continuing(
    start_all: StartAll, make_client: MakeClient
) -> None:
    """Team A stores responses with images until its share is full; team B's conversation
    is still kept and continues, and team A's first one still reads back."""
    url = start_all(
        server={"api_keys": [TEAM_A, TEAM_B]},
        responses={"max_bytes": 80_000, "max_bytes_per_key": 30_000},
    )
    team_a = make_client(url, api_key=TEAM_A["key"])
    team_b = make_client(url, api_key=TEAM_B["key"])
    flood = [
        team_a.responses.create(model="openai", input=ask(f"{QUESTION} {n:04d}" * 100, RED_SQUARE))
        for n in range(40)
    ]
    # Longer than each of team A's: the room team A leaves is less than one of those.
    first = team_b.responses.create(model="openai", input=ask("Remember 7. " * 250, RED_SQUARE))
    second = team_b.responses.create(
        model="openai", input="Which number?", previous_response_id=first.id
    )

    assert second.output_text
    assert team_b.responses.retrieve(second.id).id == second.id
    assert team_a.responses.retrieve(flood[0].id).id == flood[0].id
    not_found(lambda: team_a.responses.retrieve(flood[-1].id))  # past its share: not kept


def test_without_a_store_nothing_is_kept(start_all: StartAll, make_client: MakeClient) -> None:
    client = make_client(start_all(responses={"ttl_s": 0}))
    response = client.responses.create(model="openai", input="Hi.")

    assert response.output_text
    not_found(lambda: client.responses.retrieve(response.id))


def test_the_request_caps_hold_for_the_whole_continued_conversation(
    start_gateway: StartGateway,
) -> None:
    """A conversation continued turn by turn is what goes upstream: it stays within
    `requests.max_messages` however short each turn is."""
    url = start_gateway([{"name": "inspect", "provider": "inspect"}], requests={"max_messages": 4})
    with httpx.Client(base_url=url, timeout=10) as http:
        first = http.post("/v1/responses", json={"model": "inspect", "input": "one"}).json()
        second = http.post(
            "/v1/responses",
            json={"model": "inspect", "input": "two", "previous_response_id": first["id"]},
        )
        third = http.post(
            "/v1/responses",
            json={
                "model": "inspect",
                "input": "three",
                "previous_response_id": second.json()["id"],
            },
        )

    assert second.status_code == 200
    assert third.status_code == 400
    assert third.json()["error"]["param"] == "input"
    assert "requests.max_messages" in third.json()["error"]["message"]


# `item_reference`: an earlier response's output item by its id.


def output_id(response: Any, index: int = 0) -> str:
    """The id of one of a response's output items."""
    return str(response.output[index].id)


def item_not_found(call: Any, param: str) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        call()
    assert raised.value.body == {
        "message": raised.value.body["message"],  # type: ignore[index]
        "type": "invalid_request_error",
        "param": param,
        "code": "item_not_found",
    }


def test_item_references_by_hand_expand_to_the_stored_items(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    call = ToolCall("call_sky_1", "sky_colour", '{"place":"here"}')
    fakes["openai"].script(
        "upstream-vision", Reply(text="Let me check.", tool_calls=[call]), Reply(text="Blue.")
    )
    first = sync_client.responses.create(
        model="openai", input="What colour is the sky?", tools=[SKY_TOOL]
    )
    message, function_call = first.output
    assert (message.type, function_call.type) == ("message", "function_call")
    items: Any = [
        {"role": "user", "content": "What colour is the sky?"},
        {"type": "item_reference", "id": message.id},
        {"type": "item_reference", "id": function_call.id},
        {"type": "function_call_output", "call_id": call.call_id, "output": "blue"},
    ]

    second = sync_client.responses.create(model="openai", input=items, tools=[SKY_TOOL])

    assert second.output_text == "Blue."
    messages = fakes["openai"].received[-1].body["messages"]
    assert messages[1:] == [
        {"role": "assistant", "content": "Let me check.", "tool_calls": [call.as_chat()]},
        {"role": "tool", "tool_call_id": call.call_id, "content": "blue"},
    ]
    listed = sync_client.responses.input_items.list(second.id, order="asc").data
    assert [item.id for item in listed[1:3]] == [message.id, function_call.id]


def test_an_item_reference_streamed_and_with_previous_response_id(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    with sync_client.responses.stream(model="openai", input="Name a colour.") as stream:
        first = stream.get_final_response()
    second = sync_client.responses.create(
        model="openai",
        previous_response_id=first.id,
        input=[{"type": "item_reference", "id": output_id(first)}, *ask("Again?")],
    )

    assert second.output_text
    messages = fakes["openai"].received[-1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "assistant", "user"]
    assert messages[1] == messages[2] == {"role": "assistant", "content": first.output_text}


def test_an_unknown_deleted_or_other_keys_item_is_item_not_found(
    start_all: StartAll, make_client: MakeClient, fakes: Fakes
) -> None:
    url = start_all(server={"api_keys": [TEAM_A, TEAM_B]})
    team_a = make_client(url, api_key=TEAM_A["key"])
    team_b = make_client(url, api_key=TEAM_B["key"])
    mine = team_a.responses.create(model="openai", input="Private question.")
    gone = team_a.responses.create(model="openai", input="Short-lived.")
    team_a.responses.delete(gone.id)

    def refer(client: openai.OpenAI, item_id: str) -> Any:
        items: Any = [
            {"role": "user", "content": "Go on."},
            {"type": "item_reference", "id": item_id},
        ]
        return lambda: client.responses.create(model="openai", input=items)

    item_not_found(refer(team_b, output_id(mine)), "input[1]")
    item_not_found(refer(team_a, "msg_0123456789abcdef"), "input[1]")
    item_not_found(refer(team_a, output_id(gone)), "input[1]")
    assert len(fakes["openai"].received) == 2  # the refused ones never went upstream
    assert refer(team_a, output_id(mine))().output_text


def test_an_item_expires_with_its_response(start_all: StartAll, make_client: MakeClient) -> None:
    client = make_client(start_all(responses={"ttl_s": 1}))
    first = client.responses.create(model="openai", input="Hi.")
    items: Any = [{"type": "item_reference", "id": output_id(first)}, *ask("Again?")]
    assert client.responses.create(model="openai", input=items).output_text

    time.sleep(1.5)

    item_not_found(lambda: client.responses.create(model="openai", input=items), "input[0]")
