"""`response_format` on job providers: Masterpiece X can't honour JSON answers and says so
before any upload or job; VLM Run answers JSON objects of its own."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.e2e.clients import sdk
from tests.e2e.deployments import png_bytes
from tests.e2e.providers.conftest import StartJobGateway
from tests.e2e.providers.deployments import ask, data_uri
from tests.e2e.providers.fakes import FakeMasterpieceX, FakeVLMRun, VLMPrediction

pytestmark = pytest.mark.e2e

JSON_FORMATS = {
    "json_object": {"type": "json_object"},
    "json_schema": {
        "type": "json_schema",
        "json_schema": {"name": "caption", "schema": {"type": "object"}},
    },
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("response_format", JSON_FORMATS.values(), ids=JSON_FORMATS.keys())
def test_masterpiecex_refuses_to_promise_json(
    start_mpx_gateway: StartJobGateway,
    mpx: FakeMasterpieceX,
    response_format: Any,
    stream: bool,
) -> None:
    gateway = start_mpx_gateway()

    with sdk(gateway) as client, pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="mpx-vision",
            messages=ask("Describe it as JSON.", data_uri(png_bytes(8, 8))),
            response_format=response_format,
            stream=stream,
        )

    error = raised.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error"
    assert (error["code"], error["param"]) == ("unsupported_parameter", "response_format")
    assert response_format["type"] in error["message"]
    assert mpx.received == []


def test_vlmrun_answers_json_object_with_the_domain_schema(
    vlmrun_gateway: str, vlmrun: FakeVLMRun
) -> None:
    prediction = VLMPrediction()
    vlmrun.script(prediction)

    with sdk(vlmrun_gateway) as client:
        completion = client.chat.completions.create(
            model="vlm-invoice",
            messages=ask("Extract.", data_uri(png_bytes(8, 8))),
            response_format={"type": "json_object"},
        )

    assert json.loads(completion.choices[0].message.content or "") == prediction.response
    [generate] = vlmrun.requests("POST", "/v1/image/generate")
    # A schema would replace the domain's: `json_object` asks only for an object, as it is.
    assert "json_schema" not in generate.json["config"]
