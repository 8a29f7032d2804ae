"""Stored responses through the `openai` SDK: retrieve, input items, delete, continuing with
`previous_response_id` (earlier images included), `store: false`, and ownership by key."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import MakeClient, StartGateway
from tests.e2e.envelope import assert_error
from tests.e2e.fakes.openai_compat import Reply
from tests.e2e.responses.conftest import Fakes, StartAll
from tests.e2e.responses.helpers import QUESTION, RED_SQUARE, ask

pytestmark = pytest.mark.e2e

TEAM_A = {"key": "sk-gw-resp-team-a-51c0", "name": "team-a"}
TEAM_B = {"key": "sk-gw-resp-team-b-93de", "name": "team-b"}


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
