"""Stored responses, in process memory and in a real Redis: what is kept, for whom, how long."""

from __future__ import annotations

from typing import Any

import openai.types.responses as sdk
import orjson
import pytest

from app.config import ResponsesConfig
from app.errors import InvalidRequest, ItemNotFound, ResponseNotFound
from app.observe.metrics import Metrics
from app.responses.payload import ResponseData, response_data
from app.responses.schemas import ResponsesRequest, parse_request
from app.responses.store import ResponseStore
from app.responses.translate import to_chat_request
from app.state.base import ENTRY_COST
from app.wire.schemas import ChatCompletion
from tests.unit.backends import Backend
from tests.unit.responses.test_translate import PNG

pytestmark = pytest.mark.anyio


def turn(text: str, **body: Any) -> tuple[ResponsesRequest, ResponseData]:
    request = parse_request({"model": "m", "input": text, **body})
    answer = ChatCompletion.model_validate(
        {"model": "m", "choices": [{"message": {"role": "assistant", "content": f"re: {text}"}}]}
    )
    return request, response_data(answer, request)


def id_of(response: ResponseData) -> str:
    return str(response["id"])


def with_image(text: str) -> list[dict[str, Any]]:
    content = [{"type": "input_text", "text": text}, {"type": "input_image", "image_url": PNG}]
    return [{"role": "user", "content": content}]


async def test_a_stored_response_is_read_back_as_the_sdk_reads_it(backend: Backend) -> None:
    store = ResponseStore(backend.state, ResponsesConfig())
    request, response = turn("hello")
    assert await store.save(request, response, owner="team-a")
    stored = sdk.Response.model_validate(await store.get(id_of(response), owner="team-a"))
    assert (stored.id, stored.output_text) == (id_of(response), "re: hello")


async def test_a_response_saved_as_data_is_kept_as_the_client_got_it(backend: Backend) -> None:
    store = ResponseStore(backend.state, ResponsesConfig())
    request = parse_request({"model": "m", "input": "look", "metadata": {"k": "é"}})
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    answer = ChatCompletion.model_validate(
        {
            "model": "m",
            "choices": [
                {"message": {"role": "assistant", "content": "Seen.", "tool_calls": [call]}}
            ],
        }
    )
    data = response_data(answer, request)
    sent = orjson.dumps(data)
    assert await store.save(request, data, owner="a", response_json=sent)

    assert orjson.dumps(await store.get(str(data["id"]), owner="a")) == sent
    assert await store.conversation(str(data["id"]), owner="a") == [
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": "Seen.", "tool_calls": [call]},
    ]


async def test_store_false_and_ttl_zero_keep_nothing(backend: Backend) -> None:
    request, response = turn("hello", store=False)
    assert not await ResponseStore(backend.state, ResponsesConfig()).save(
        request, response, owner="a"
    )
    request, response = turn("hello")
    assert not await ResponseStore(backend.state, ResponsesConfig(ttl_s=0)).save(
        request, response, owner="a"
    )
    with pytest.raises(ResponseNotFound):
        await ResponseStore(backend.state, ResponsesConfig()).get(id_of(response), owner="a")


async def test_another_key_sees_no_response_of_this_one(backend: Backend) -> None:
    store = ResponseStore(backend.state, ResponsesConfig())
    request, response = turn("secret")
    await store.save(request, response, owner="team-a")
    with pytest.raises(ResponseNotFound) as caught:
        await store.get(id_of(response), owner="team-b")
    assert (caught.value.status_code, caught.value.code) == (404, "response_not_found")
    with pytest.raises(ResponseNotFound) as continued:
        await store.conversation(id_of(response), owner="anonymous")
    assert continued.value.param == "previous_response_id"
    with pytest.raises(ResponseNotFound):
        await store.delete(id_of(response), owner="team-b")
    assert (await store.get(id_of(response), owner="team-a"))["id"] == id_of(response)


async def test_a_response_expires_after_ttl_s(backend: Backend) -> None:
    store = ResponseStore(backend.state, ResponsesConfig(ttl_s=0.5))
    request, response = turn("brief")
    await store.save(request, response, owner="a")
    assert (await store.get(id_of(response), owner="a"))["id"] == id_of(response)
    await backend.advance(0.7)
    with pytest.raises(ResponseNotFound):
        await store.get(id_of(response), owner="a")


async def test_deleted_responses_are_gone_and_free_their_bytes(backend: Backend) -> None:
    request, response = turn("x" * 1000)
    store = ResponseStore(backend.state, ResponsesConfig(max_bytes=6000), keyed=False)
    assert await store.save(request, response, owner="a")
    deleted = await store.delete(id_of(response), owner="a")
    assert deleted.model_dump() == {"id": id_of(response), "object": "response", "deleted": True}
    with pytest.raises(ResponseNotFound):
        await store.get(id_of(response), owner="a")
    again, second = turn("x" * 1000)
    assert await store.save(again, second, owner="a")


async def test_at_max_bytes_new_responses_are_not_stored_until_older_ones_expire(
    backend: Backend,
) -> None:
    config = ResponsesConfig(ttl_s=0.5, max_bytes=6000)
    store = ResponseStore(backend.state, config, keyed=False)
    first = turn("x" * 1000)
    second = turn("y" * 1000)
    assert await store.save(*first, owner="a")
    assert not await store.save(*second, owner="a")
    with pytest.raises(ResponseNotFound):
        await store.get(id_of(second[1]), owner="a")
    await backend.advance(0.7)
    assert await store.save(*second, owner="a")


async def test_an_expired_response_frees_its_bytes_while_its_image_lives_on(
    backend: Backend,
) -> None:
    """Images outlive the responses that carry them: an expired response behind a live image
    in write order must not stay counted until the image goes."""
    from app.state import MemoryState

    def turns() -> tuple[
        tuple[ResponsesRequest, ResponseData], tuple[ResponsesRequest, ResponseData]
    ]:
        pictured = parse_request({"model": "m", "input": with_image("x" * 3000)})
        return (pictured, turn("x" * 3000)[1]), turn("y" * 3000)

    scratch = MemoryState()  # sizes are the same in every backend: the stored text's bytes
    (pictured, first), _ = turns()
    await ResponseStore(scratch, ResponsesConfig()).save(pictured, first, owner="a")
    both = sum(len(value.encode()) + ENTRY_COST for value in scratch._counted.values.values())
    config = ResponsesConfig(ttl_s=0.5, max_bytes=both + 2000)
    store = ResponseStore(backend.state, config, keyed=False)
    (pictured, first), second = turns()
    assert await store.save(pictured, first, owner="a")
    assert not await store.save(*second, owner="a")  # no room beside the first
    await backend.advance(0.7)  # the first has expired; its image lives 60 s longer
    assert await store.save(*second, owner="a")


async def test_one_key_at_its_share_keeps_no_other_key_from_storing(backend: Backend) -> None:
    size = await _record_bytes("x" * 2000)
    config = ResponsesConfig(max_bytes=10 * size, max_bytes_per_key=size * 5 // 2)
    store = ResponseStore(backend.state, config)
    kept = [await store.save(*turn("x" * 2000), owner="greedy") for _ in range(4)]
    assert kept == [True, True, False, False]  # its share is used up, far below max_bytes
    assert await store.save(*turn("y" * 2000), owner="other")
    assert await store.save(*turn("z" * 2000), owner="other")


async def _record_bytes(text: str) -> int:
    """What storing one response to `text` takes, as every backend counts it."""
    from app.state import MemoryState

    scratch = MemoryState()
    await ResponseStore(scratch, ResponsesConfig()).save(*turn(text), owner="o")
    return sum(len(value.encode()) + ENTRY_COST for value in scratch._counted.values.values())


async def test_each_key_pays_for_the_images_its_responses_carry(backend: Backend) -> None:
    image = len(PNG) + ENTRY_COST
    config = ResponsesConfig(max_bytes=1_000_000, max_bytes_per_key=image + 2_000 + ENTRY_COST)
    store = ResponseStore(backend.state, config)
    first = parse_request({"model": "m", "input": with_image("a")})
    assert await store.save(first, turn("a")[1], owner="team-a")
    # The image is stored once, but a key whose share it does not fit can't carry it.
    crowded = ResponseStore(backend.state, ResponsesConfig(max_bytes_per_key=image // 2))
    second = parse_request({"model": "m", "input": with_image("b")})
    assert not await crowded.save(second, turn("b")[1], owner="team-b")
    assert await store.save(second, turn("b")[1], owner="team-b")
    assert await _image_entries(backend) == 1


@pytest.mark.parametrize(("keyed", "kept"), [(True, 2), (False, 8)])
async def test_without_a_share_set_a_key_may_hold_a_quarter_unless_nobody_has_a_key(
    backend: Backend, keyed: bool, kept: int
) -> None:
    """Without gateway keys every request has one owner, which may use all of `max_bytes`."""
    size = await _record_bytes("x" * 4000)
    store = ResponseStore(backend.state, ResponsesConfig(max_bytes=8 * size), keyed=keyed)
    assert [await store.save(*turn("x" * 4000), owner="o") for _ in range(9)].count(True) == kept


async def test_previous_response_id_rebuilds_the_whole_conversation(backend: Backend) -> None:
    store = ResponseStore(backend.state, ResponsesConfig())
    first_request, first = turn("one", instructions="sys")
    await store.save(first_request, first, owner="a")
    history = await store.conversation(id_of(first), owner="a")
    second_request, second = turn("two", previous_response_id=id_of(first))
    await store.save(second_request, second, owner="a", history=history)

    third = parse_request({"model": "m", "input": with_image("three")})
    messages = to_chat_request(third, await store.conversation(id_of(second), owner="a")).messages
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert [m.content for m in messages[:4]] == ["one", "re: one", "two", "re: two"]
    assert messages[4].model_dump(exclude_none=True)["content"][1]["image_url"]["url"] == PNG


async def test_an_image_is_stored_once_whatever_the_responses_that_carry_it(
    backend: Backend,
) -> None:
    store = ResponseStore(backend.state, ResponsesConfig())
    for text in ("first", "second", "third"):
        request = parse_request({"model": "m", "input": with_image(text)})
        _, response = turn(text)
        await store.save(request, response, owner="a")
        history = await store.conversation(id_of(response), owner="a")
        content = history[0]["content"]
        assert isinstance(content, list)
        assert content[1]["image_url"]["url"] == PNG
    images = await _image_entries(backend)
    assert images == 1


async def test_a_continued_conversation_does_not_hash_its_earlier_images_again(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.responses import store as module

    hashed: list[str] = []
    digest = module._data_uri_digest

    def counted(value: str) -> str | None:
        found = digest(value)
        if found is not None:
            hashed.append(found)
        return found

    monkeypatch.setattr(module, "_data_uri_digest", counted)
    store = ResponseStore(backend.state, ResponsesConfig())
    first = parse_request({"model": "m", "input": with_image("first")})
    _, response = turn("first")
    await store.save(first, response, owner="a")
    assert len(hashed) == 1
    history = await store.conversation(id_of(response), owner="a")
    second = parse_request({"model": "m", "input": "and now?", "previous_response_id": "x"})
    _, answer = turn("second")
    assert await store.save(second, answer, owner="a", history=history)
    assert len(hashed) == 1  # the earlier image kept its digest from the store
    messages = await store.conversation(id_of(answer), owner="a")
    content = messages[0]["content"]
    assert isinstance(content, list)
    assert content[1]["image_url"]["url"] == PNG
    assert await _image_entries(backend) == 1


async def _image_entries(backend: Backend) -> int:
    """How many image entries the backend holds."""
    from app.state import MemoryState

    if isinstance(backend.state, MemoryState):
        return sum(1 for key in backend.state._counted.values if key.startswith("responses:image:"))
    keys = await backend.state._redis.keys("vg:responses:image:*")  # type: ignore[attr-defined]
    return len(keys)


async def test_input_items_are_listed_in_openai_shape_with_paging(backend: Backend) -> None:
    store = ResponseStore(backend.state, ResponsesConfig())
    request = parse_request(
        {
            "model": "m",
            "input": [
                *with_image("look"),
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "done"},
            ],
        }
    )
    _, response = turn("x")
    await store.save(request, response, owner="a")
    newest = sdk.ResponseItemList.model_validate(
        await store.list_input_items(id_of(response), owner="a", limit=2)
    )
    assert [item.type for item in newest.data] == ["function_call_output", "function_call"]
    assert newest.has_more
    rest = sdk.ResponseItemList.model_validate(
        await store.list_input_items(id_of(response), owner="a", after=newest.last_id)
    )
    [message] = rest.data
    assert isinstance(message, sdk.ResponseInputMessageItem)
    assert message.content[1].image_url == PNG  # type: ignore[union-attr]
    assert not rest.has_more
    with pytest.raises(InvalidRequest) as caught:
        await store.list_input_items(id_of(response), owner="a", limit=101)
    assert caught.value.param == "limit"


async def test_a_response_over_the_size_of_one_record_is_not_stored(backend: Backend) -> None:
    metrics = Metrics()
    store = ResponseStore(backend.state, ResponsesConfig(max_record_bytes=5_000), metrics=metrics)

    assert await store.save(*turn("small"), owner="a")
    assert not await store.save(*turn("x" * 10_000), owner="a")

    counted = metrics.registry.get_sample_value(
        "gateway_responses_not_stored_total", {"key": "a", "reason": "too_large"}
    )
    assert counted == 1


def with_tool_call(text: str) -> tuple[ResponsesRequest, ResponseData]:
    """A turn whose answer is a message and a function call."""
    request = parse_request({"model": "m", "input": text})
    call = {"id": "call_7", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    message = {"role": "assistant", "content": f"re: {text}", "tool_calls": [call]}
    answer = ChatCompletion.model_validate({"model": "m", "choices": [{"message": message}]})
    return request, response_data(answer, request)


def output_ids(response: ResponseData) -> list[str]:
    output = response["output"]
    assert isinstance(output, list)
    return [str(item["id"]) for item in output]


def references(*ids: object, before: str = "Go on.") -> ResponsesRequest:
    refs = [{"type": "item_reference", "id": item_id} for item_id in ids]
    return parse_request({"model": "m", "input": [{"role": "user", "content": before}, *refs]})


async def test_an_item_reference_expands_to_the_stored_output_item(backend: Backend) -> None:
    store = ResponseStore(backend.state, ResponsesConfig())
    request, response = with_tool_call("weather?")
    assert await store.save(request, response, owner="team-a")
    follow_up = references(*output_ids(response))

    await store.expand_references(follow_up, owner="team-a")

    chat = to_chat_request(follow_up)
    assert [message.model_dump(exclude_none=True) for message in chat.messages] == [
        {"role": "user", "content": "Go on."},
        {
            "role": "assistant",
            "content": "re: weather?",
            "tool_calls": [
                {
                    "id": "call_7",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"a":1}'},
                }
            ],
        },
    ]


async def test_another_keys_expired_or_unknown_item_is_not_found(backend: Backend) -> None:
    store = ResponseStore(backend.state, ResponsesConfig(ttl_s=0.5))
    request, response = turn("mine")
    await store.save(request, response, owner="team-a")
    [message] = output_ids(response)

    for owner, item_id in [("team-b", message), ("team-a", "msg_unknown")]:
        with pytest.raises(ItemNotFound) as caught:
            await store.expand_references(references(item_id), owner=owner)
        assert (caught.value.status_code, caught.value.param) == (404, "input[1]")
    await store.expand_references(references(message), owner="team-a")
    await backend.advance(0.7)
    with pytest.raises(ItemNotFound):
        await store.expand_references(references(message), owner="team-a")


async def test_a_deleted_responses_items_are_gone_and_free_their_bytes(backend: Backend) -> None:
    store = ResponseStore(backend.state, ResponsesConfig(max_bytes=9000), keyed=False)
    request, response = with_tool_call("x" * 1000)
    assert await store.save(request, response, owner="a")
    ids = output_ids(response)

    await store.delete(id_of(response), owner="a")

    for item_id in ids:
        with pytest.raises(ItemNotFound):
            await store.expand_references(references(item_id), owner="a")
    assert await store.save(*with_tool_call("y" * 1000), owner="a")


async def test_store_false_indexes_no_item(backend: Backend) -> None:
    store = ResponseStore(backend.state, ResponsesConfig())
    request, response = turn("unkept", store=False)
    await store.save(request, response, owner="a")

    with pytest.raises(ItemNotFound):
        await store.expand_references(references(*output_ids(response)), owner="a")
