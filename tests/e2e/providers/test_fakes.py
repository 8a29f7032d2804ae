"""The fakes refuse what their real servers refuse, so the provider tests mean something."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.providers.deployments import PG_KEY, data_uri, image_bytes
from tests.e2e.providers.fakes import (
    PG_FORBIDDEN,
    PG_NO_VISION_STREAMING,
    FakePredictionGuard,
    FakeTakeoff,
    TakeoffReply,
)

pytestmark = pytest.mark.e2e

PNG = image_bytes("PNG")
FilePart = tuple[str | None, bytes | str, str]
PAYLOAD: FilePart = (None, json.dumps({"text": "Describe it."}), "application/json")
IMAGE: FilePart = ("cat.png", PNG, "image/png")


def test_takeoff_reads_the_multipart_parts(takeoff: FakeTakeoff) -> None:
    response = httpx.post(
        f"{takeoff.url}/image_generate", files={"json_data": PAYLOAD, "image_data": IMAGE}
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"text": "A red square."}
    [received] = takeoff.received
    assert received.json == {"text": "Describe it."}
    image = received.part("image_data")
    assert (image.filename, image.data, image.content_type) == IMAGE
    assert received.part("json_data").filename is None


@pytest.mark.parametrize(
    ("files", "status"),
    [
        ([("json_data", PAYLOAD)], 400),
        ([("json_data", PAYLOAD), ("image_data", IMAGE), ("image_data", IMAGE)], 400),
        ([("image_data", IMAGE)], 422),
        ([("json_data", (None, PAYLOAD[1], "text/plain")), ("image_data", IMAGE)], 422),
        ([("json_data", (None, b"{not json", "application/json")), ("image_data", IMAGE)], 422),
    ],
    ids=["no-image", "two-images", "no-json", "json-as-text", "bad-json"],
)
def test_takeoff_refuses_a_malformed_multipart_body(
    takeoff: FakeTakeoff, files: list[tuple[str, FilePart]], status: int
) -> None:
    response = httpx.post(f"{takeoff.url}/image_generate_stream", files=files)

    assert response.status_code == status, response.text
    assert takeoff.received[-1].refused


def test_takeoff_refuses_json_on_the_image_route(takeoff: FakeTakeoff) -> None:
    response = httpx.post(f"{takeoff.url}/image_generate", json={"text": "Hi"})

    assert response.status_code == 422


def test_takeoff_streams_batches_as_json_events_out_of_order(takeoff: FakeTakeoff) -> None:
    takeoff.script(TakeoffReply(batch=[["a", "b"], ["c", "d"]]))

    response = httpx.post(f"{takeoff.url}/generate_stream", json={"text": ["x", "y"]})

    events = [json.loads(e.removeprefix("data: ")) for e in response.text.split("\n\n") if e]
    assert events == [
        {"text": "c", "batch_id": 1},
        {"text": "a", "batch_id": 0},
        {"text": "d", "batch_id": 1},
        {"text": "b", "batch_id": 0},
    ]


def test_takeoff_stream_that_breaks_off_is_a_transport_error(takeoff: FakeTakeoff) -> None:
    takeoff.script(TakeoffReply(break_after=1))

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{takeoff.url}/generate_stream", json={"text": "x"})


def _pg_post(fake: FakePredictionGuard, url: str, **fields: object) -> httpx.Response:
    content = [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": url}}]
    body = {"model": "m", "messages": [{"role": "user", "content": content}], **fields}
    return httpx.post(
        f"{fake.url}/chat/completions", json=body, headers={"Authorization": f"Bearer {PG_KEY}"}
    )


def test_prediction_guard_takes_a_data_uri(pg: FakePredictionGuard) -> None:
    response = _pg_post(pg, data_uri(PNG, "image/png"))

    assert response.status_code == 200, response.text
    assert pg.received[0].images == [("image/png", PNG)]


@pytest.mark.parametrize(
    "url", ["https://img.example.invalid/cat.png", "data:image/png,raw", "data:text/plain;base64,"]
)
def test_prediction_guard_refuses_images_that_are_not_base64_data_uris(
    pg: FakePredictionGuard, url: str
) -> None:
    response = _pg_post(pg, url)

    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)


def test_prediction_guard_refuses_to_stream_images(pg: FakePredictionGuard) -> None:
    response = _pg_post(pg, data_uri(PNG, "image/png"), stream=True)

    assert response.status_code == 400
    assert response.json() == {"error": PG_NO_VISION_STREAMING}


def test_prediction_guard_refuses_a_wrong_key(pg: FakePredictionGuard) -> None:
    response = httpx.post(
        f"{pg.url}/chat/completions",
        json={"model": "m", "messages": "Hi"},
        headers={"Authorization": "Bearer wrong"},
    )

    assert response.status_code == 403
    assert response.json() == {"error": PG_FORBIDDEN}


def test_prediction_guard_refuses_the_developer_role(pg: FakePredictionGuard) -> None:
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    response = httpx.post(
        f"{pg.url}/chat/completions",
        json={"model": "m", "messages": messages},
        headers={"Authorization": f"Bearer {PG_KEY}"},
    )

    assert response.status_code == 400
    assert "developer" in response.json()["error"]
