"""Chat bodies whose shape, not size, is the attack: a million tiny parts, deep nesting,
endless lists and names. Every cap here is a default of `requests:`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest

from app.config import RequestsConfig
from tests.e2e.deployments import entry
from tests.e2e.fakes.openai_compat import FakeUpstream
from tests.e2e.servers import ServedFakes
from tests.hostile.watch import Watch
from tests.ops.configs import INSPECT_ONLY, gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e

DEFAULTS = RequestsConfig()
HI = {"role": "user", "content": "hi"}
PARTS = 1_270_000
THREE_BODIES_MB = 3 * 33


@pytest.fixture(scope="module")
def upstream(served_fakes: ServedFakes) -> FakeUpstream:
    return served_fakes.get(FakeUpstream, "openai")


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, upstream: FakeUpstream) -> GatewayProcess:
    return gateways.start(gateway_config([*INSPECT_ONLY, entry("relayed", upstream)]))


def post(gateway: GatewayProcess, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
        timeout=60,
    )


def chat(model: str = "inspect", **fields: Any) -> bytes:
    return orjson.dumps({"model": model, "messages": [HI], **fields})


def empty_text_parts(count: int) -> bytes:
    parts = b",".join([b'{"type":"text","text":""}'] * count)
    return b'{"model":"inspect","messages":[{"role":"user","content":[' + parts + b"]}]}"


def test_a_million_empty_text_parts_are_refused_before_they_are_parsed(
    gateway: GatewayProcess,
) -> None:
    body = empty_text_parts(PARTS)
    assert 32_000_000 < len(body) < 33_554_432  # under max_request_bytes: only its shape is wrong

    # Three at once; the bodies alone are 100 MB, which the gateway must hold to read them.
    with Watch(gateway, rss_growth_mb=THREE_BODIES_MB + 30), ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda _: post(gateway, body), range(3)))

    assert [reply.status_code for reply in replies] == [400] * 3
    assert "max_json_items" in replies[0].json()["error"]["message"]


def nested(depth: int) -> bytes:
    """JSON objects `depth` deep, written by hand: JSON encoders refuse to go that deep."""
    return b'{"a":' * (depth - 1) + b'{"leaf":1}' + b"}" * (depth - 1)


@pytest.mark.parametrize("depth", [260, 1000])
@pytest.mark.parametrize("field", ["metadata", "tools"])
def test_deep_nesting_is_400_naming_the_field(
    gateway: GatewayProcess, field: str, depth: int
) -> None:
    deep = nested(depth)
    if field == "tools":
        deep = b'[{"type":"function","function":{"name":"f","parameters":' + deep + b"}}]"
    body = chat("relayed")[:-1] + b',"' + field.encode() + b'":' + deep + b"}"

    with Watch(gateway):
        reply = post(gateway, body)

    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_value", field)


def too_many_messages() -> bytes:
    return orjson.dumps({"model": "inspect", "messages": [HI] * (DEFAULTS.max_messages + 1)})


def too_many_parts() -> bytes:
    part = {"type": "text", "text": "x"}
    content = [part] * (DEFAULTS.max_content_parts + 1)
    return orjson.dumps({"model": "inspect", "messages": [{"role": "user", "content": content}]})


def too_much_text() -> bytes:
    half = "x" * (DEFAULTS.max_text_chars // 2 + 1)
    messages = [{"role": "user", "content": half}, {"role": "user", "content": half}]
    return orjson.dumps({"model": "inspect", "messages": messages})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(too_many_messages(), "messages", id="messages"),
        pytest.param(too_many_parts(), "messages[0].content", id="content parts"),
        pytest.param(too_much_text(), "messages[1].content", id="text"),
        pytest.param(chat("m" * (DEFAULTS.max_model_chars + 1)), "model", id="model name"),
    ],
)
def test_each_shape_cap_is_a_400_naming_what_is_over(
    gateway: GatewayProcess, body: bytes, param: str
) -> None:
    with Watch(gateway):
        reply = post(gateway, body)

    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_value", param)
