"""A job poll answered with something that is not the reply the upstream documents: 502
`upstream_failed` after a couple of polls at most, never a wait until the deadline."""

from __future__ import annotations

import openai
import pytest

from tests.e2e.clients import sdk
from tests.e2e.conftest import StartGateway
from tests.e2e.deployments import png_bytes
from tests.e2e.envelope import stream_until_error
from tests.e2e.providers.deployments import ask, data_uri, mpx_entry, vlmrun_entry
from tests.e2e.providers.fakes import FakeMasterpieceX, FakeVLMRun, MPXJob, VLMPrediction

pytestmark = pytest.mark.e2e

# Long enough that a gateway polling on until the deadline answers 504, not 502.
TIMEOUT_S = 3
MOST_POLLS = 3

NOT_JSON = b"<html><body>502 Bad Gateway</body></html>"
NOT_AN_OBJECT = b'["complete"]'

MPX_REPLIES = {
    "not JSON": NOT_JSON,
    "not an object": NOT_AN_OBJECT,
    "no status": b'{"requestId": "OGSsSuHXIN8YLzenRbgN", "progress": 40.0}',
    "unknown status": b'{"requestId": "OGSsSuHXIN8YLzenRbgN", "status": "exploded"}',
    "complete without output": b'{"requestId": "OGSsSuHXIN8YLzenRbgN", "status": "complete"}',
}
VLMRUN_REPLIES = {
    "not JSON": NOT_JSON,
    "not an object": NOT_AN_OBJECT,
    "no status": b'{"id": "f3e1", "domain": "image.caption"}',
    "unknown status": b'{"id": "f3e1", "status": "exploded", "response": null}',
    "completed without response": b'{"id": "f3e1", "status": "completed", "response": null}',
}


def assert_upstream_failed(error: openai.APIStatusError) -> None:
    assert error.status_code == 502, error.message
    assert isinstance(error.body, dict)
    assert error.body["type"] == "upstream_error"
    assert error.body["code"] == "upstream_failed"


@pytest.fixture
def mpx_gateway(start_gateway: StartGateway, mpx: FakeMasterpieceX) -> str:
    # One retry allowed: a malformed job must still not be submitted, and paid for, twice.
    return start_gateway([mpx_entry(mpx, timeout_s=TIMEOUT_S, retries=1)])


@pytest.fixture
def vlmrun_gateway(start_gateway: StartGateway, vlmrun: FakeVLMRun) -> str:
    entry = vlmrun_entry(
        vlmrun, "vlm-caption", timeout_s=TIMEOUT_S, retries=1, options={"domain": "image.caption"}
    )
    return start_gateway([entry])


@pytest.mark.parametrize("body", MPX_REPLIES.values(), ids=MPX_REPLIES.keys())
def test_a_malformed_masterpiecex_status_is_upstream_failed(
    mpx_gateway: str, mpx: FakeMasterpieceX, body: bytes
) -> None:
    mpx.script(MPXJob(poll_body=body))

    with sdk(mpx_gateway) as client, pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="mpx-vision", messages=ask("Hi"))

    assert_upstream_failed(raised.value)
    assert len(mpx.requests("POST", "/v2/llm/llm_call")) == 1
    assert 1 <= len(mpx.polls) <= MOST_POLLS


@pytest.mark.parametrize("body", VLMRUN_REPLIES.values(), ids=VLMRUN_REPLIES.keys())
def test_a_malformed_vlmrun_prediction_is_upstream_failed(
    vlmrun_gateway: str, vlmrun: FakeVLMRun, body: bytes
) -> None:
    vlmrun.script(VLMPrediction(initial="pending", poll_body=body))

    with sdk(vlmrun_gateway) as client, pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(
            model="vlm-caption", messages=ask("Caption.", data_uri(png_bytes(8, 8)))
        )

    assert_upstream_failed(raised.value)
    assert len(vlmrun.requests("POST", "/v1/image/generate")) == 1
    assert 1 <= len(vlmrun.polls) <= MOST_POLLS


def test_a_streamed_job_with_a_malformed_status_ends_with_upstream_failed(
    mpx_gateway: str, mpx: FakeMasterpieceX
) -> None:
    mpx.script(MPXJob(poll_body=NOT_JSON))

    with sdk(mpx_gateway) as client:
        chunks, error = stream_until_error(client, model="mpx-vision", messages=ask("Hi"))

    assert [chunk.choices[0].delta.role for chunk in chunks] == ["assistant"]
    assert isinstance(error.body, dict)
    assert error.body["code"] == "upstream_failed"
    assert 1 <= len(mpx.polls) <= MOST_POLLS
