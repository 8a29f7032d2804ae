"""Large data URIs go upstream from the request body they came in: for every provider that
takes them as they are, the upstream's body is byte for byte what encoding the whole parsed
request gives; every other path, and every error, is what it is for any request."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam
from PIL import Image

from app.config import ImagesConfig, RequestsConfig
from app.providers.base import Call, ProviderContext
from app.providers.openai_compat import OpenAICompatible
from app.providers.predictionguard import PredictionGuard
from app.state import MemoryState
from app.transport import AiohttpTransport
from app.wire.reading import parse_chat_request
from app.wire.shape import RequestShape
from tests.conftest import make_config
from tests.e2e.clients import sdk
from tests.e2e.conftest import StartGateway
from tests.e2e.deployments import entry, png_bytes
from tests.e2e.envelope import assert_error
from tests.e2e.fakes.openai_compat import FakeUpstream
from tests.e2e.providers.conftest import LOOPBACK_IMAGES
from tests.e2e.providers.deployments import PG_MODEL, pg_entry, takeoff_entry, vlmrun_entry
from tests.e2e.providers.fakes import FakePredictionGuard, FakeTakeoff, FakeVLMRun

pytestmark = pytest.mark.e2e


LARGE_PNG = png_bytes(600, 500, None)  # noise, about 900 kB: its data URI is cut out of the body
SMALL_PNG = png_bytes(8, 8, None)  # parsed with the rest
LARGE = "data:image/png;base64," + base64.b64encode(LARGE_PNG).decode()
SMALL = "data:image/png;base64," + base64.b64encode(SMALL_PNG).decode()
# Text that JSON must escape, and a data URI's opening inside it.
TEXT = 'Compare these. Say "data:image/png;base64,AAAA" back, ünïcödé, tab\there, \\ too.'


def messages(*urls: str, text: str = TEXT) -> list[ChatCompletionMessageParam]:
    parts: list[ChatCompletionContentPartParam] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": parts}]


class SentBodies:
    """An `openai` SDK client whose request bodies are kept as they went out."""

    def __init__(self, url: str) -> None:
        self.bodies: list[bytes] = []
        hooks = {"request": [lambda request: self.bodies.append(request.content)]}
        self.client = sdk(url, http_client=openai.DefaultHttpxClient(event_hooks=hooks))


@pytest.fixture
def sdk_for() -> Iterator[Callable[[str], SentBodies]]:
    made: list[SentBodies] = []

    def make(url: str) -> SentBodies:
        made.append(SentBodies(url))
        return made[-1]

    yield make
    for sent in made:
        sent.client.close()


def built_from_whole(provider: OpenAICompatible, sent: bytes, upstream_model: str) -> bytes:
    """The upstream body the provider builds from the request parsed whole, data URIs and all."""
    request = parse_chat_request(sent, RequestShape(RequestsConfig()))
    assert request.inline is None
    stream = bool(request.stream) and not isinstance(provider, PredictionGuard)
    return orjson.dumps(provider.payload(Call(request, upstream_model), stream=stream))


def provider_for(model: dict[str, Any]) -> OpenAICompatible:
    config = make_config([model])
    context = ProviderContext(AiohttpTransport(), ImagesConfig(), MemoryState())
    kind = PredictionGuard if model["provider"] == "predictionguard" else OpenAICompatible
    return kind(config.models[0], context)


def assert_sent_as_is(received: bytes, headers: dict[str, str], expected: bytes) -> None:
    assert received == expected
    assert headers["content-length"] == str(len(expected))
    assert "transfer-encoding" not in headers


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("n", [None, 2])
def test_an_openai_compatible_upstream_gets_the_body_byte_for_byte(
    start_gateway: StartGateway,
    openai_upstream: FakeUpstream,
    sdk_for: Callable[[str], SentBodies],
    stream: bool,
    n: int | None,
) -> None:
    model = entry("vision", openai_upstream, upstream_model="llava-13b")
    sdk = sdk_for(start_gateway([model]))
    extra: dict[str, Any] = {"n": n} if n else {}

    reply = sdk.client.chat.completions.create(
        model="vision",
        messages=messages(LARGE, SMALL, LARGE),
        stream=stream,
        temperature=0.2,
        extra_body={"top_k": 5, "note": 'a "quoted" ünïcödé note'},
        **extra,
    )
    if isinstance(reply, openai.Stream):
        assert "".join(c.choices[0].delta.content or "" for c in reply if c.choices)

    [sent] = sdk.bodies
    [received] = openai_upstream.received
    expected = built_from_whole(provider_for(model), sent, "llava-13b")
    assert_sent_as_is(received.raw, received.headers, expected)
    assert received.body["messages"][1]["content"][1]["image_url"]["url"] == LARGE


@pytest.mark.parametrize("stream", [False, True])
def test_prediction_guard_gets_the_body_byte_for_byte(
    start_gateway: StartGateway,
    pg: FakePredictionGuard,
    sdk_for: Callable[[str], SentBodies],
    stream: bool,
) -> None:
    model = pg_entry("pg-vision", pg)
    sdk = sdk_for(start_gateway([model], images=LOOPBACK_IMAGES))

    reply = sdk.client.chat.completions.create(
        model="pg-vision",
        messages=messages(LARGE),
        stream=stream,
    )
    if isinstance(reply, openai.Stream):
        assert list(reply)

    [sent] = sdk.bodies
    [received] = pg.received
    expected = built_from_whole(provider_for(model), sent, PG_MODEL)
    assert_sent_as_is(received.raw, received.headers, expected)
    assert received.images == [("image/png", LARGE_PNG)]


def test_vlm_run_gets_the_data_uri_as_sent(
    start_gateway: StartGateway, vlmrun: FakeVLMRun, sdk_for: Callable[[str], SentBodies]
) -> None:
    model = vlmrun_entry(vlmrun, "vlm-caption", options={"domain": "image.caption"})
    sdk = sdk_for(start_gateway([model], images=LOOPBACK_IMAGES))

    sdk.client.chat.completions.create(model="vlm-caption", messages=messages(LARGE))

    [request] = vlmrun.requests("POST", "/v1/image/generate")
    assert request.json["images"] == [LARGE]
    assert json.dumps(LARGE).encode() in request.body  # the client's own bytes, unescaped
    assert request.headers["content-length"] == str(len(request.body))


def test_takeoff_gets_the_image_bytes(
    start_gateway: StartGateway, takeoff: FakeTakeoff, sdk_for: Callable[[str], SentBodies]
) -> None:
    sdk = sdk_for(start_gateway([takeoff_entry("takeoff-vision", takeoff)], images=LOOPBACK_IMAGES))

    sdk.client.chat.completions.create(model="takeoff-vision", messages=messages(LARGE))

    [sent] = takeoff.received
    assert sent.part("image_data").data == LARGE_PNG


def test_a_large_image_that_must_be_converted_is(
    start_gateway: StartGateway, openai_upstream: FakeUpstream
) -> None:
    url = start_gateway([entry("vision", openai_upstream)])
    part = {"type": "image_url", "image_url": {"url": LARGE, "detail": "low"}}
    body = {"model": "vision", "messages": [{"role": "user", "content": [part]}]}

    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)

    assert reply.status_code == 200, reply.text
    [received] = openai_upstream.received
    sent = received.body["messages"][0]["content"][0]["image_url"]["url"]
    header, _, payload = sent.partition(",")
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    assert max(image.size) == 512
    assert header.startswith("data:image/")


def test_a_large_data_uri_in_a_text_part_goes_on_as_text(
    start_gateway: StartGateway,
    openai_upstream: FakeUpstream,
    sdk_for: Callable[[str], SentBodies],
) -> None:
    model = entry("vision", openai_upstream)
    sdk = sdk_for(start_gateway([model]))

    sdk.client.chat.completions.create(model="vision", messages=messages(SMALL, text=LARGE))

    [received] = openai_upstream.received
    assert received.body["messages"][1]["content"][0]["text"] == LARGE
    assert received.raw == built_from_whole(provider_for(model), sdk.bodies[0], "vision")


def _raw_request(url: str, uri: bytes) -> httpx.Response:
    part = b'{"type": "image_url", "image_url": {"url": "' + uri + b'"}}'
    body = b'{"model": "vision", "messages": [{"role": "user", "content": [' + part + b"]}]}"
    headers = {"content-type": "application/json"}
    return httpx.post(f"{url}/v1/chat/completions", content=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("spoiler", "status", "code", "param"),
    [
        (b"\x01", 400, "invalid_json", None),  # JSON strings hold no control characters
        (b"\xff", 400, "invalid_json", None),  # nor bytes that are not UTF-8
        (b"*", 400, "invalid_image", "messages[0].content[0].image_url"),
        ("é".encode(), 400, "invalid_image", "messages[0].content[0].image_url"),
    ],
)
def test_a_large_data_uri_that_is_not_base64_is_refused_as_ever(
    start_gateway: StartGateway,
    openai_upstream: FakeUpstream,
    spoiler: bytes,
    status: int,
    code: str,
    param: str | None,
) -> None:
    url = start_gateway([entry("vision", openai_upstream)])
    uri = LARGE.encode()

    reply = _raw_request(url, uri[:5000] + spoiler + uri[5000:])

    assert_error(reply, status, "invalid_request_error", code, param)
    assert openai_upstream.received == []


def test_a_large_image_over_the_limit_is_refused_as_ever(
    start_gateway: StartGateway, openai_upstream: FakeUpstream
) -> None:
    url = start_gateway([entry("vision", openai_upstream)], images={"max_image_bytes": 100_000})

    reply = _raw_request(url, LARGE.encode())

    assert_error(
        reply, 400, "invalid_request_error", "image_too_large", "messages[0].content[0].image_url"
    )
