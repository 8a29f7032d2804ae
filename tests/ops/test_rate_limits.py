"""Rate limits across processes: with Redis every worker and every replica
counts against the same window; with process memory each worker counts alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.deployments import entry
from tests.e2e.envelope import assert_error
from tests.e2e.fakes.openai_compat import FakeUpstream
from tests.ops.configs import gateway_config
from tests.ops.redis_server import RedisServer
from tests.ops.traffic import chat_body, requests_by_worker, send_chats
from tests.processes import Gateways

pytestmark = pytest.mark.e2e

RPM = 5
SENT = 12
ADMIN_KEY = "gw-ops-admin-5c0e7d2a91b4"
TEAM_A_KEY = "gw-ops-team-a-8f31b6e04d27"
TEAM_B_KEY = "gw-ops-team-b-2a9d4c7e1f60"
TEAM_C_KEY = "gw-ops-team-c-71d0e9a4b5c2"
TEAM_C_RPM = 8
# Far enough from its end, a limit this large lends each process a few units at a time.
LEASED_RPM = 1024
API_KEYS = [
    {"key": ADMIN_KEY, "name": "admin"},
    {"key": TEAM_A_KEY, "name": "team-a", "rpm": RPM},
    {"key": TEAM_B_KEY, "name": "team-b", "models": ["open"]},
    {"key": TEAM_C_KEY, "name": "team-c", "rpm": TEAM_C_RPM},
]


def models(upstream: FakeUpstream) -> list[dict[str, object]]:
    return [
        entry("limited", upstream, upstream_model="up-limited", rpm=RPM),
        entry("open", upstream, upstream_model="up-open"),
        entry("other", upstream, upstream_model="up-other"),
        entry("roomy", upstream, upstream_model="up-roomy", rpm=10_000),
        entry("leased", upstream, upstream_model="up-leased", rpm=LEASED_RPM),
    ]


def assert_window(responses: list[httpx.Response]) -> None:
    """Exactly `RPM` answers, and every other request refused with a usable `Retry-After`."""
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: RPM, 429: len(responses) - RPM}, statuses
    for response in responses:
        if response.status_code == 429:
            assert_error(response, 429, "rate_limit_error", "rate_limit_exceeded")
            assert 1 <= int(response.headers["retry-after"]) <= 60


def test_one_gateway_with_two_workers_shares_model_and_key_limits(
    redis: RedisServer, upstream: FakeUpstream, gateways: Gateways, tmp_path: Path
) -> None:
    config = gateway_config(models(upstream), redis_url=redis.url, server={"api_keys": API_KEYS})
    gateway = gateways.start(config, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})

    by_model = send_chats([gateway.url], "limited", SENT, api_key=ADMIN_KEY)
    by_key = send_chats([gateway.url], "open", SENT, api_key=TEAM_A_KEY)

    assert_window(by_model)
    assert_window(by_key)
    served = requests_by_worker(tmp_path, 2 * SENT)
    assert len(served) == 2
    assert all(count > 0 for count in served.values()), served
    assert len([r for r in upstream.received if r.model == "up-limited"]) == RPM


def test_with_process_memory_each_worker_counts_alone(
    upstream: FakeUpstream, gateways: Gateways, tmp_path: Path
) -> None:
    gateway = gateways.start(
        gateway_config(models(upstream)),
        workers=2,
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
    )

    responses = send_chats([gateway.url], "limited", SENT)

    served = requests_by_worker(tmp_path, SENT)
    assert all(count > 0 for count in served.values()), served
    succeeded = sum(response.status_code == 200 for response in responses)
    assert succeeded == sum(min(int(count), RPM) for count in served.values())
    assert succeeded > RPM


@pytest.fixture(scope="module")
def two_gateways(
    redis_server: RedisServer,
    upstream_server: FakeUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[str]]:
    """Two gateway processes, one config, one Redis: two replicas behind a load balancer."""
    redis_server.start()
    config = gateway_config(
        models(upstream_server), redis_url=redis_server.url, server={"api_keys": API_KEYS}
    )
    launcher = Gateways(tmp_path_factory.mktemp("replicas"))
    try:
        replicas = [launcher.launch(config), launcher.launch(config)]
        for replica in replicas:
            replica.wait_ready()
        yield [replica.url for replica in replicas]
    finally:
        launcher.stop_all()


@pytest.mark.usefixtures("redis")
def test_two_gateways_share_the_model_limit(
    upstream: FakeUpstream, two_gateways: list[str]
) -> None:
    responses = send_chats(two_gateways, "limited", SENT, api_key=ADMIN_KEY)

    assert_window(responses)
    assert len(upstream.received) == RPM


@pytest.mark.usefixtures("redis")
def test_two_gateways_share_a_key_limit(two_gateways: list[str]) -> None:
    responses = send_chats(two_gateways, "open", SENT, api_key=TEAM_A_KEY)

    assert_window(responses)
    # Other keys keep their own allowance.
    assert all(
        response.status_code == 200
        for response in send_chats(two_gateways, "open", 4, api_key=ADMIN_KEY)
    )


@pytest.mark.usefixtures("redis")
def test_a_key_limited_to_some_models_is_refused_the_others(two_gateways: list[str]) -> None:
    for url in two_gateways:
        headers = {"authorization": f"Bearer {TEAM_B_KEY}"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
            allowed = http.post("/v1/chat/completions", json=chat_body("open"))
            refused = http.post("/v1/chat/completions", json=chat_body("other"))

        assert allowed.status_code == 200, allowed.text
        assert_error(refused, 403, "permission_error", "model_not_allowed", param="model")


@pytest.mark.usefixtures("redis")
@pytest.mark.parametrize("api_key", [None, "gw-ops-wrong-4e1a0b7c33d9", TEAM_A_KEY + "x"])
def test_a_missing_or_wrong_key_is_refused(two_gateways: list[str], api_key: str | None) -> None:
    for response in send_chats(two_gateways, "open", 2, api_key=api_key):
        assert_error(response, 401, "authentication_error", "invalid_api_key")


def test_a_request_for_n_choices_counts_n_times_in_redis(
    redis: RedisServer, upstream: FakeUpstream, gateways: Gateways
) -> None:
    """Team A's `rpm` of 5: `n: 3` is three requests, so the second one is refused."""
    config = gateway_config(models(upstream), redis_url=redis.url, server={"api_keys": API_KEYS})
    gateway = gateways.start(config)
    body = {"model": "open", "n": 3, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {TEAM_A_KEY}"}
    replies = [
        httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=10)
        for _ in range(2)
    ]
    assert [reply.status_code for reply in replies] == [200, 429]
    assert_error(replies[1], 429, "rate_limit_error", "rate_limit_exceeded")


def test_key_and_model_limits_hold_together_across_replicas_of_two_workers(
    redis: RedisServer, upstream: FakeUpstream, gateways: Gateways
) -> None:
    """Team C's `rpm` of 8 and the model's of 5, over two replicas of two workers each: the
    first 8 requests pass the key, 5 of them the model; each request is one script call."""
    config = gateway_config(models(upstream), redis_url=redis.url, server={"api_keys": API_KEYS})
    replicas = [gateways.launch(config, workers=2), gateways.launch(config, workers=2)]
    for replica in replicas:
        replica.wait_ready()
    redis.reset_stats()

    responses = send_chats(
        [replica.url for replica in replicas],
        "limited",
        2 * SENT,
        api_key=TEAM_C_KEY,
        concurrency=8,
    )

    messages = Counter(
        response.json()["error"]["message"].split(" is limited")[0]
        for response in responses
        if response.status_code == 429
    )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: RPM, 429: 2 * SENT - RPM}, statuses
    assert messages == {"the model 'limited'": TEAM_C_RPM - RPM, "this key": 2 * SENT - TEAM_C_RPM}
    assert len(upstream.received) == RPM
    assert redis.calls()["evalsha"] == 2 * SENT


def test_a_request_under_key_and_model_limits_is_one_round_trip_to_redis(
    redis: RedisServer, upstream: FakeUpstream, gateways: Gateways
) -> None:
    config = gateway_config(models(upstream), redis_url=redis.url, server={"api_keys": API_KEYS})
    gateway = gateways.start(config)
    send_chats([gateway.url], "roomy", 1, api_key=TEAM_C_KEY)  # loads the script
    redis.reset_stats()

    responses = send_chats([gateway.url], "roomy", 5, api_key=TEAM_C_KEY, concurrency=1)

    assert [response.status_code for response in responses] == [200] * 5
    calls = redis.calls()
    # Inside the script: GET, INCRBY, PEXPIRE and PTTL per counter, EXISTS per cooldown.
    scripted = {"get", "incrby", "pexpire", "pttl", "exists"}
    assert {name: n for name, n in calls.items() if name not in scripted} == {"evalsha": 5}


def test_lent_budgets_never_pass_a_limit_across_replicas_of_two_workers(
    redis: RedisServer, upstream: FakeUpstream, gateways: Gateways
) -> None:
    """Past a model's `rpm` of 1,024 over two replicas of two workers: never more answered
    than the limit, at most four processes' leases fewer (1.6 %), and far fewer script calls
    than requests."""
    config = gateway_config(models(upstream), redis_url=redis.url, server={"api_keys": API_KEYS})
    replicas = [gateways.launch(config, workers=2), gateways.launch(config, workers=2)]
    for replica in replicas:
        replica.wait_ready()
    redis.reset_stats()
    sent = LEASED_RPM + 100

    responses = send_chats(
        [replica.url for replica in replicas], "leased", sent, api_key=ADMIN_KEY, concurrency=8
    )

    answered = sum(response.status_code == 200 for response in responses)
    assert LEASED_RPM * (1 - 4 / 256) <= answered <= LEASED_RPM
    assert len(upstream.received) == answered
    for response in responses:
        if response.status_code != 200:
            assert_error(response, 429, "rate_limit_error", "rate_limit_exceeded")
            assert "the model 'leased' is limited to 1024" in response.json()["error"]["message"]
    # Leases shrink with what is left, down to none in the last quarter of the limit.
    assert redis.calls()["evalsha"] < 0.7 * sent
