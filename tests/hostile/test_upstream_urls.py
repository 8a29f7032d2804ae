"""What an upstream hands back, against the server `python -m app` starts: an upload URL on
an internal service, a metadata address or a private network is never reached, what storage
says of a refused upload is not relayed, and a job id is never a path."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.servers import serving
from tests.hostile.fakes import data_uri, png
from tests.hostile.handing import INTERNAL_SECRET, STORAGE_DETAIL, HandingUpstream, InternalService
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
API_KEY = "sk-hostile-handing-upstream-2c9e"


@pytest.fixture(scope="module")
def handing() -> Iterator[HandingUpstream]:
    with serving(HandingUpstream()) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def internal() -> Iterator[InternalService]:
    with serving(InternalService()) as service:
        yield service


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, handing: HandingUpstream) -> GatewayProcess:
    job = {"api_key": API_KEY, "retries": 0, "timeout_s": 10, "poll_interval_s": 0.05}
    models = [
        {"name": "mpx", "provider": "masterpiecex", "base_url": f"{handing.url}/mpx/v2", **job},
        {
            "name": "vlm",
            "provider": "vlmrun",
            "base_url": f"{handing.url}/vlm/v1",
            "options": {"domain": "image.caption"},
            **job,
        },
    ]
    return gateways.start(gateway_config(models))


def _ask(gateway: GatewayProcess, model: str, side: int = 8) -> httpx.Response:
    """A question about a PNG `side` pixels a side (one uploaded before is not again)."""
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": data_uri(png(side, side))}},
    ]
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": content}]},
        timeout=30,
    )


@pytest.mark.parametrize(
    "asset_url",
    ["internal", "http://169.254.169.254/latest/meta-data/x", "http://10.1.2.3/bucket/x"],
    ids=["internal-service", "metadata", "private-network"],
)
def test_an_upload_url_off_the_upstreams_storage_is_never_reached(
    gateway: GatewayProcess,
    handing: HandingUpstream,
    internal: InternalService,
    asset_url: str,
) -> None:
    handing.reset()
    internal.clear()
    handing.asset_url = f"{internal.url}/upload" if asset_url == "internal" else asset_url
    with Watch(gateway, max_cpu_s=1):
        reply = _ask(gateway, "mpx")
        print(f"{asset_url}: {reply.status_code} {reply.text[:160]}")  # noqa: T201
        assert reply.status_code == 502, reply.text[:300]
        assert reply.json()["error"]["code"] == "upstream_failed"
        assert "not one of its storage hosts" in reply.json()["error"]["message"]
        assert internal.seen == []
        assert INTERNAL_SECRET not in reply.text
        assert "X-Goog-Signature" not in reply.text


def test_what_storage_says_of_a_refused_upload_is_not_relayed(
    gateway: GatewayProcess, handing: HandingUpstream
) -> None:
    handing.reset()
    handing.asset_url = "{self}/mpx/storage/refuses"
    with Watch(gateway, max_cpu_s=1):
        reply = _ask(gateway, "mpx")
        print(f"refused upload: {reply.status_code} {reply.text[:160]}")  # noqa: T201
        assert reply.status_code == 502, reply.text[:300]
        assert "CanonicalRequest" not in reply.text
        assert STORAGE_DETAIL not in reply.text


@pytest.mark.parametrize("model", ["mpx", "vlm"])
@pytest.mark.parametrize("job_id", ["../../internal-probe", "job/../../x", "job?x=1", "%2e%2e"])
def test_a_job_id_is_never_a_path(
    gateway: GatewayProcess, handing: HandingUpstream, model: str, job_id: str
) -> None:
    handing.reset()
    handing.job_id = job_id
    with Watch(gateway, max_cpu_s=1):
        reply = _ask(gateway, model)
        polled = [seen.path for seen in handing.seen if seen.method == "GET"]
        print(f"{model} {job_id}: {reply.status_code}, polled {polled}")  # noqa: T201
        assert reply.status_code == 502, reply.text[:300]
        assert polled == []
        assert INTERNAL_SECRET not in reply.text


def test_the_upstreams_own_storage_and_ids_still_serve(
    gateway: GatewayProcess, handing: HandingUpstream
) -> None:
    handing.reset()
    assert _ask(gateway, "mpx", side=9).status_code == 200
    assert [seen.path for seen in handing.seen if seen.method == "PUT"] == ["/mpx/storage/ok"]
