"""The log of a whole session of requests (never a key, a presigned query string or
image data): one JSON object per line, a request line per chat request, and no secret."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.deployments import OPENAI_KEY, entry, png_bytes
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.ops.configs import gateway_config
from tests.processes import CLEAN_EXIT, GatewayProcess, Gateways

pytestmark = pytest.mark.e2e

GATEWAY_KEY = "gw-ops-logs-7d41c9e2b85a60f3"
WRONG_KEY = "gw-ops-logs-wrong-1b6f0e9a4c27"
SIGNATURE = "SECRETSIG"
PRESIGNED_URL = f"https://x.test/a.png?X-Amz-Signature={SIGNATURE}&X-Amz-Credential=AKIAOPSTEST"
IMAGE = png_bytes(48, 48, color=None)  # noise: its base64 has no repeating runs
IMAGE_URI = "data:image/png;base64," + base64.b64encode(IMAGE).decode()
NOT_AN_IMAGE_URI = "data:image/png;base64," + base64.b64encode(os.urandom(3000)).decode()


def message(image_url: str) -> list[dict[str, Any]]:
    image = {"type": "image_url", "image_url": {"url": image_url}}
    return [{"role": "user", "content": [{"type": "text", "text": "What is it?"}, image]}]


# (request id, model, image URL, stream, expected status, provider the request reached; None:
# refused before any call, either answer will do): a session with every kind of outcome.
SESSION = [
    ("ops-image", "vision", IMAGE_URI, False, 200, "openai"),
    ("ops-stream", "vision", IMAGE_URI, True, 200, "openai"),
    ("ops-presigned", "vision", PRESIGNED_URL, False, 200, "openai"),
    ("ops-rejected", "rejects", PRESIGNED_URL, False, 400, "openai"),
    ("ops-denied", "denied", IMAGE_URI, False, 502, "openai"),
    ("ops-broken-stream", "breaks", IMAGE_URI, True, 200, "openai"),
    ("ops-not-an-image", "vision", NOT_AN_IMAGE_URI, False, 400, None),
    ("ops-unknown", "no-such-model", IMAGE_URI, False, 404, "none"),
]
LOGGED_STATUS = {"ops-broken-stream": 502}


@pytest.fixture(scope="module")
def logged_session(
    upstream_server: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """A gateway that served `SESSION` and a request with a wrong key, then stopped."""
    upstream = upstream_server
    upstream.reset()
    upstream.script("up-rejects", Reply(status=400, error=f"cannot fetch {PRESIGNED_URL}"))
    upstream.script("up-denied", Reply(status=401))  # its message echoes the key it got
    upstream.script("up-breaks", Reply(error_after=2))  # so does this mid-stream error
    models = [
        entry(name, upstream, upstream_model=f"up-{name}")
        for name in ("vision", "rejects", "denied", "breaks")
    ]
    config = gateway_config(models, server={"api_keys": [GATEWAY_KEY], "log_format": "json"})
    launcher = Gateways(tmp_path_factory.mktemp("logged"))
    try:
        # Debug level: whatever any library logs must be clean too.
        gateway = launcher.start(config, log_level="debug")
        run_session(gateway.url)
        assert gateway.stop() in CLEAN_EXIT
        yield gateway
    finally:
        launcher.stop_all()


def run_session(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        for request_id, model, image_url, stream, status, _ in SESSION:
            response = http.post(
                "/v1/chat/completions",
                json={"model": model, "messages": message(image_url), "stream": stream},
                headers={"authorization": f"Bearer {GATEWAY_KEY}", "x-request-id": request_id},
            )
            assert response.status_code == status, (request_id, response.text)
        refused = http.post(
            "/v1/chat/completions",
            json={"model": "vision", "messages": message(IMAGE_URI)},
            headers={"authorization": f"Bearer {WRONG_KEY}", "x-request-id": "ops-wrong-key"},
        )
        assert refused.status_code == 401


def request_lines(gateway: GatewayProcess) -> dict[str, dict[str, Any]]:
    """The request log line of each request, by request id; every line must be JSON."""
    records = gateway.log_records()
    lines = [r for r in records if r.get("event") == "chat_completion"]
    by_id = {line["request_id"]: line for line in lines}
    assert len(by_id) == len(lines), "a request left more than one line"
    return by_id


def test_no_secret_reaches_the_log(logged_session: GatewayProcess) -> None:
    log = logged_session.log_text()
    image_b64 = base64.b64encode(IMAGE).decode()
    secrets = {
        "gateway key": GATEWAY_KEY,
        "wrong gateway key": WRONG_KEY,
        "upstream key": OPENAI_KEY,
        "presigned signature": SIGNATURE,
        "presigned credential": "AKIAOPSTEST",
        "image base64": image_b64[len(image_b64) // 2 :][:48],
        "non-image base64": NOT_AN_IMAGE_URI[-200:-152],
    }

    assert "chat_completion" in log  # the session was logged at all
    leaked = [name for name, secret in secrets.items() if secret in log]
    assert leaked == [], "\n".join(
        line for line in log.splitlines() if any(s in line for s in secrets.values())
    )


def test_each_chat_request_leaves_one_json_line(logged_session: GatewayProcess) -> None:
    lines = request_lines(logged_session)

    assert set(lines) == {request_id for request_id, *_ in SESSION} | {"ops-wrong-key"}
    refused = lines["ops-wrong-key"]
    assert (refused["status"], refused["error"], refused["key"]) == (
        401,
        "invalid_api_key",
        "anonymous",
    )
    for request_id, model, _, stream, status, _ in SESSION:
        line = lines[request_id]
        assert line["level"] == "info"
        assert line["model"] == model
        # A stream that broke after its 200 is logged with the error it ended with.
        assert line["status"] == LOGGED_STATUS.get(request_id, status)
        assert line["stream"] is stream
        assert isinstance(line["provider"], str)
        assert isinstance(line["duration_ms"], float | int)
        assert line["duration_ms"] > 0
        assert set(line["images"]) == {"count", "bytes", "sha256"}


def test_request_lines_summarise_the_images_that_passed_through(
    logged_session: GatewayProcess,
) -> None:
    lines = request_lines(logged_session)

    for request_id in ("ops-image", "ops-stream", "ops-denied", "ops-broken-stream"):
        images = lines[request_id]["images"]
        [prefix] = images["sha256"]
        assert images["count"] == 1
        assert images["bytes"] == len(IMAGE)
        assert len(prefix) >= 8
        assert hashlib.sha256(IMAGE).hexdigest().startswith(prefix)
    passed_on = lines["ops-presigned"]["images"]  # the upstream fetches it, not the gateway
    assert passed_on == {"count": 0, "bytes": 0, "sha256": []}


def test_stream_lines_say_how_the_stream_ended(logged_session: GatewayProcess) -> None:
    lines = request_lines(logged_session)

    assert lines["ops-stream"]["outcome"] == "completed"
    assert lines["ops-broken-stream"]["outcome"] == "upstream_failed"


def test_request_lines_name_the_provider_that_answered_or_failed(
    logged_session: GatewayProcess,
) -> None:
    lines = request_lines(logged_session)

    providers = {request_id: lines[request_id]["provider"] for request_id, *_ in SESSION}
    expected = {
        request_id: provider if provider is not None else providers[request_id]
        for request_id, *_, provider in SESSION
    }
    assert providers == expected
