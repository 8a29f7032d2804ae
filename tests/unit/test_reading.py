"""Reading a request body in one call: where it is parsed, and what the caller gets."""

from __future__ import annotations

import base64
import os
import threading

import orjson
import pytest

from app.config import RequestsConfig
from app.errors import InvalidRequest
from app.responses.schemas import read_responses_request
from app.wire.reading import OFF_LOOP_BYTES, read_chat_request
from app.wire.shape import Body, RequestShape

pytestmark = pytest.mark.anyio

IMAGE = "data:image/png;base64," + base64.b64encode(os.urandom(OFF_LOOP_BYTES)).decode()


class WatchedShape(RequestShape):
    """The caps of the default config, noting the thread each body is loaded on."""

    def __init__(self) -> None:
        super().__init__(RequestsConfig())
        self.threads: list[int] = []

    def load(self, body: Body) -> dict[str, object]:
        self.threads.append(threading.get_ident())
        return super().load(body)


def chat_body(*content: dict[str, object]) -> bytes:
    return orjson.dumps({"model": "m", "messages": [{"role": "user", "content": list(content)}]})


def text(chars: int) -> dict[str, object]:
    return {"type": "text", "text": "x" * chars}


@pytest.mark.parametrize(
    ("body", "off_loop"),
    [
        pytest.param(chat_body(text(1000)), False, id="small"),
        pytest.param(chat_body(text(OFF_LOOP_BYTES)), True, id="large"),
        pytest.param(
            chat_body(text(10), {"type": "image_url", "image_url": {"url": IMAGE}}),
            False,
            id="large only for a data URI left in the body",
        ),
    ],
)
async def test_a_large_body_is_parsed_on_a_worker_thread(body: bytes, off_loop: bool) -> None:
    shape = WatchedShape()

    request = await read_chat_request(body, shape)

    assert request.model == "m"
    assert len(body) > OFF_LOOP_BYTES or not off_loop
    loop_thread = threading.get_ident()
    assert shape.threads
    assert all((thread != loop_thread) is off_loop for thread in shape.threads)


@pytest.mark.parametrize("chars", [10, OFF_LOOP_BYTES])
async def test_a_responses_body_is_read_the_same_way(chars: int) -> None:
    shape = WatchedShape()
    body = orjson.dumps({"model": "m", "input": "x" * chars})

    request = await read_responses_request(body, shape)

    assert request.input == "x" * chars
    [thread] = shape.threads
    assert (thread != threading.get_ident()) is (chars == OFF_LOOP_BYTES)


@pytest.mark.parametrize("chars", [10, OFF_LOOP_BYTES])
async def test_a_worker_thread_raises_the_same_400(chars: int) -> None:
    body = orjson.dumps({"model": "m", "input": "x" * chars, "temperature": 9})

    with pytest.raises(InvalidRequest) as raised:
        await read_responses_request(body, RequestShape(RequestsConfig()))

    assert (raised.value.status_code, raised.value.code) == (400, "invalid_value")
    assert raised.value.param == "temperature"
