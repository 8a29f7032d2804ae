"""A key limited to some models, against the server `python -m app` starts: it may use the
routes its list names and no other (a separate entry whose name its family pattern matches
included), no variant with control characters or dot segments goes upstream, and
`/v1/models` lists only what the key may use."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import pytest

from tests.hostile.fakes import HostileUpstream
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
TEAM = {"key": "sk-hostile-rights-team-4a1d", "name": "team", "models": ["team/*"]}
ADMIN = {"key": "sk-hostile-rights-admin-e93b", "name": "admin"}


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, hostile_upstream: HostileUpstream) -> GatewayProcess:
    echo = {"provider": "openai", "base_url": hostile_upstream.base_url("echo-model")}
    models = [
        {"name": "team/*", **echo},
        {"name": "team/secret", "upstream_model": "secret-model", **echo},
        {"name": "inspect", "provider": "inspect"},
    ]
    return gateways.start(gateway_config(models, server={"api_keys": [TEAM, ADMIN]}))


def _ask(gateway: GatewayProcess, model: str, key: Mapping[str, object] = TEAM) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key['key']}"},
        timeout=30,
    )


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("team/draft", 200, None),
        ("team/secret", 403, "model_not_allowed"),
        ("inspect", 403, "model_not_allowed"),
        ("team/../secret", 400, "invalid_value"),
        ("team/./draft", 400, "invalid_value"),
        ("team/x\u0000", 400, "invalid_value"),
        ("team/x\r\nX-Injected: 1", 400, "invalid_value"),
        ("team/..\\secret", 400, "invalid_value"),
    ],
    ids=["its-family", "separate-entry", "other-model", "dot-dot", "dot", "nul", "crlf", "slash"],
)
def test_a_limited_key_uses_only_the_routes_its_list_names(
    gateway: GatewayProcess,
    hostile_upstream: HostileUpstream,
    model: str,
    status: int,
    code: str | None,
) -> None:
    hostile_upstream.reset()
    with Watch(gateway, max_cpu_s=1):
        reply = _ask(gateway, model)
        print(f"{model!r}: {reply.status_code}, upstream asked {hostile_upstream.models_asked}")  # noqa: T201
        assert reply.status_code == status, reply.text[:300]
        if code is not None:
            assert reply.json()["error"]["code"] == code
            assert hostile_upstream.models_asked == []


def test_a_key_without_a_list_uses_every_entry(
    gateway: GatewayProcess, hostile_upstream: HostileUpstream
) -> None:
    hostile_upstream.reset()
    assert _ask(gateway, "team/secret", ADMIN).status_code == 200
    assert hostile_upstream.models_asked == ["secret-model"]


def test_the_model_list_shows_a_limited_key_only_what_it_may_use(gateway: GatewayProcess) -> None:
    headers = {"Authorization": f"Bearer {TEAM['key']}"}
    with Watch(gateway, max_cpu_s=1):
        listing = httpx.get(f"{gateway.url}/v1/models", headers=headers, timeout=10).json()
        one = httpx.get(f"{gateway.url}/v1/models/team/secret", headers=headers, timeout=10)
        ids = [model["id"] for model in listing["data"]]
        families = [family["pattern"] for family in listing["x_gateway"]["families"]]
        print(f"listed {ids}, families {families}, team/secret: {one.status_code}")  # noqa: T201
        assert ids == []
        assert families == ["team/*"]
        assert one.status_code == 404
