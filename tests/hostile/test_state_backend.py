"""Clients that would push the gateway off its Redis, against the server `python -m app`
starts with `state.backend: redis`: a burst of Responses requests that each move megabytes
to and from Redis never makes it fall back to process memory (where other keys' responses
are not found and rate limits start afresh), and `/ready` tells when it did fall back."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping

import httpx
import pytest

from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.ops.redis_server import RedisServer
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e
ATTACKER = {"key": "sk-hostile-state-attacker-6b0f", "name": "attacker"}
VICTIM = {"key": "sk-hostile-state-victim-3d18", "name": "victim"}
LIMITED = {"key": "sk-hostile-state-limited-a94c", "name": "limited", "rpm": 3}
# A conversation of nearly `requests.max_text_chars`: a stored record of 8 MB, which every
# continuation reads back whole and stores again.
LONG_INPUT = "x" * 4_150_000
CONTINUATIONS = 40
# Every continuation holds its conversation (8 MB read, parsed, stored again) at once.
RSS_GROWTH_MB = CONTINUATIONS * 20
# And the Redis client reads and encodes each on the event loop: tens of ms apiece, which
# forty at once can line up.
HEALTH_WITHIN_S = 0.5


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, redis: RedisServer) -> GatewayProcess:
    # Shares large enough that no store is refused: what is at stake is Redis, not the quota.
    responses = {"max_bytes": 8 * 2**30, "max_bytes_per_key": 4 * 2**30}
    return gateways.start(
        gateway_config(
            redis_url=redis.url,
            server={"api_keys": [ATTACKER, VICTIM, LIMITED]},
            responses=responses,
        )
    )


def _headers(key: Mapping[str, object]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def _backend_errors(gateway: GatewayProcess) -> float:
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    found = re.search(r"^gateway_state_backend_errors_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def _burst(gateway: GatewayProcess, long: str, kept: str) -> dict[str, list[int]]:
    """The attacker's continuations of its long conversation, all at once; meanwhile the
    victim reads its response, the limited key asks six times, and `/ready` is asked."""
    limits = httpx.Limits(max_connections=CONTINUATIONS + 10)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=120, limits=limits) as client:

        async def continuation() -> int:
            body = {"model": "inspect", "input": "go on", "previous_response_id": long}
            reply = await client.post("/v1/responses", json=body, headers=_headers(ATTACKER))
            return reply.status_code

        async def every(
            asked: int, pause_s: float, ask: Callable[[], Awaitable[httpx.Response]]
        ) -> list[int]:
            statuses = []
            for _ in range(asked):
                statuses.append((await ask()).status_code)
                await asyncio.sleep(pause_s)
            return statuses

        chat = {"model": "inspect", "messages": [{"role": "user", "content": "hi"}]}
        attack, reads, limited, ready = await asyncio.gather(
            asyncio.gather(*[continuation() for _ in range(CONTINUATIONS)]),
            every(23, 0.1, lambda: client.get(f"/v1/responses/{kept}", headers=_headers(VICTIM))),
            every(
                6,
                0.3,
                lambda: client.post("/v1/chat/completions", json=chat, headers=_headers(LIMITED)),
            ),
            every(20, 0.15, lambda: client.get("/ready")),
        )
    return {"attack": list(attack), "reads": reads, "limited": limited, "ready": ready}


def test_a_burst_of_large_stored_responses_keeps_the_gateway_on_redis(
    gateway: GatewayProcess, redis: RedisServer
) -> None:
    redis.flush()
    kept = httpx.post(
        f"{gateway.url}/v1/responses",
        json={"model": "inspect", "input": "remember this"},
        headers=_headers(VICTIM),
        timeout=30,
    ).json()["id"]
    long = httpx.post(
        f"{gateway.url}/v1/responses",
        json={"model": "inspect", "input": LONG_INPUT},
        headers=_headers(ATTACKER),
        timeout=60,
    ).json()["id"]

    with Watch(gateway, rss_growth_mb=RSS_GROWTH_MB, max_cpu_s=60, health_within_s=HEALTH_WITHIN_S):
        seen = asyncio.run(_burst(gateway, long, kept))
        errors = _backend_errors(gateway)
        print({name: sorted(set(statuses)) for name, statuses in seen.items()}, errors)  # noqa: T201
        assert seen["attack"] == [200] * CONTINUATIONS
        assert seen["reads"] == [200] * 23
        assert seen["limited"] == [200, 200, 200, 429, 429, 429]
        assert seen["ready"] == [200] * 20
        assert errors == 0


def test_ready_says_the_gateway_served_from_memory_even_once_redis_answers_again(
    gateway: GatewayProcess, redis: RedisServer
) -> None:
    chat = {"model": "inspect", "messages": [{"role": "user", "content": "hi"}]}
    with Watch(gateway, max_cpu_s=5):
        assert httpx.get(f"{gateway.url}/ready", timeout=10).status_code == 200
        with redis.paused():  # a hung Redis: the request is served from memory
            served = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                json=chat,
                headers=_headers(VICTIM),
                timeout=30,
            )
        time.sleep(0.2)
        ready = httpx.get(f"{gateway.url}/ready", timeout=10)
        print(f"served {served.status_code}, then /ready {ready.status_code}")  # noqa: T201
        assert served.status_code == 200
        assert ready.status_code == 503, ready.text
        assert ready.json()["status"] == "degraded"
