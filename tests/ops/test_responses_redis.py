"""Stored responses shared through Redis: a conversation continued with `previous_response_id`
on whichever replica of `python -m app` takes each turn, and read back anywhere.

Which worker of one replica accepts a connection is the kernel's choice, and it may hand a
short run of sequential requests to the same one; two replicas sharing one Redis are the same
case as two workers sharing it, and alternating between them is certain to cross."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.e2e.deployments import entry, png_data_uri
from tests.e2e.fakes.openai_compat import FakeUpstream
from tests.ops.configs import gateway_config
from tests.ops.redis_server import RedisServer
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e

TURNS = 8
IMAGE = png_data_uri(10, 6, "blue")


def fresh_client(url: str) -> openai.OpenAI:
    """An SDK client whose every request opens a new connection."""
    return openai.OpenAI(
        base_url=f"{url}/v1",
        api_key="test",
        max_retries=0,
        default_headers={"connection": "close"},
    )


def two_replicas(
    gateways: Gateways, redis: RedisServer, upstream: FakeUpstream
) -> list[GatewayProcess]:
    config = gateway_config(
        [entry("vision", upstream, upstream_model="up-vision")], redis_url=redis.url
    )
    replicas = [gateways.launch(config), gateways.launch(config)]
    for replica in replicas:
        replica.wait_ready()
    return replicas


def test_a_conversation_continues_on_either_replica(
    redis: RedisServer, upstream: FakeUpstream, gateways: Gateways
) -> None:
    replicas = two_replicas(gateways, redis, upstream)
    clients = [fresh_client(replica.url) for replica in replicas]

    first = clients[0].responses.create(
        model="vision",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Remember this image."},
                    {"type": "input_image", "image_url": IMAGE, "detail": "auto"},
                ],
            }
        ],
    )
    ids = [first.id]
    for turn in range(1, TURNS):
        client = clients[turn % 2]  # each turn continues what the other replica stored
        if turn % 4 in (1, 2):
            with client.responses.stream(
                model="vision", input=f"Turn {turn}.", previous_response_id=ids[-1]
            ) as stream:
                ids.append(stream.get_final_response().id)
        else:
            answer = client.responses.create(
                model="vision", input=f"Turn {turn}.", previous_response_id=ids[-1]
            )
            ids.append(answer.id)

    assert len(upstream.received) == TURNS
    last = upstream.received[-1].body["messages"]
    assert len(last) == 2 * TURNS - 1
    assert last[0]["content"][1]["image_url"]["url"] == IMAGE
    assert last[-1] == {"role": "user", "content": f"Turn {TURNS - 1}."}
    for client in clients:  # both replicas read every response
        for response_id in ids:
            assert client.responses.retrieve(response_id).id == response_id
    for client in clients:
        [item] = client.responses.input_items.list(ids[0]).data
        assert item.type == "message"
        image = item.content[1]
        assert image.type == "input_image"
        assert image.image_url == IMAGE
    images = [key for key in redis.stored_keys() if key.startswith("vg:responses:image:")]
    assert len(images) == 1  # kept once, however many responses carry it
    for client in clients:
        client.close()


def test_item_references_expand_on_either_replica(
    redis: RedisServer, upstream: FakeUpstream, gateways: Gateways
) -> None:
    """As the Vercel AI SDK builds a conversation: every turn sends the whole of it, each
    earlier answer by reference, to whichever replica takes it."""
    replicas = two_replicas(gateways, redis, upstream)
    clients = [fresh_client(replica.url) for replica in replicas]
    conversation: list[Any] = []
    answers: list[str] = []
    for turn in range(TURNS):
        client = clients[turn % 2]
        conversation.append({"role": "user", "content": f"Turn {turn}."})
        response: Any
        if turn % 4 in (1, 2):
            with client.responses.stream(model="vision", input=conversation) as stream:
                response = stream.get_final_response()
        else:
            response = client.responses.create(model="vision", input=conversation)
        conversation.append({"type": "item_reference", "id": response.output[0].id})
        answers.append(response.output_text)

    assert len(upstream.received) == TURNS
    last = upstream.received[-1].body["messages"]
    assert [m["content"] for m in last[1::2]] == answers[:-1]
    assert {m["role"] for m in last[1::2]} == {"assistant"}
    items = [key for key in redis.stored_keys() if key.startswith("vg:responses:item:")]
    assert len(items) == TURNS
    for client in clients:
        client.close()
