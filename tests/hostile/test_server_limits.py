"""Attacks on the server itself, before any route: endless headers, slow drips, idle and
surplus connections. No key is needed for any of them."""

from __future__ import annotations

import resource
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.hostile.raw import Reply, connect, drip, read_reply, send_until_answered
from tests.hostile.watch import Watch
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e

READ_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 64
LIMITS = {
    "header_timeout_s": READ_TIMEOUT_S,
    "body_timeout_s": READ_TIMEOUT_S,
    "keepalive_timeout_s": READ_TIMEOUT_S,
    "max_connections": MAX_CONNECTIONS,
}
# How late past a timeout the server may act, on a busy machine.
SLACK_S = 1.5
HEAD = b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Filler: "


@pytest.fixture(scope="module")
def gateway(gateways: Gateways) -> GatewayProcess:
    return gateways.start(gateway_config(server=LIMITS))


def huge_header(url: str, size: int) -> Reply | None:
    with connect(url) as sock:
        send_until_answered(sock, HEAD, b"a" * 65536, size)
        return read_reply(sock)


def test_headers_over_the_cap_are_refused_with_431_as_they_arrive(
    gateway: GatewayProcess,
) -> None:
    with Watch(gateway), ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: huge_header(gateway.url, 64 * 1024 * 1024), range(4)))
        with connect(gateway.url) as sock:
            sock.sendall(HEAD + b"a" * 60_000 + b"\r\nConnection: close\r\n\r\n")
            under_the_cap = read_reply(sock)

    assert [reply and reply.status for reply in replies] == [431] * 4
    assert replies[0] is not None
    assert b"request_header_too_large" in replies[0].body
    assert under_the_cap is not None
    assert under_the_cap.status == 200


def slow_head(url: str) -> tuple[Reply | None, float]:
    with connect(url) as sock:
        started = time.monotonic()
        drip(sock, HEAD + b"a" * 1000, 0.1, until=started + READ_TIMEOUT_S + SLACK_S)
        return read_reply(sock), time.monotonic() - started


def slow_body(url: str) -> tuple[Reply | None, float]:
    with connect(url) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        started = time.monotonic()
        drip(sock, b"{" * 1000, 0.1, until=started + READ_TIMEOUT_S + SLACK_S)
        return read_reply(sock), time.monotonic() - started


def test_slow_heads_and_bodies_are_cut_off_at_the_read_timeouts(gateway: GatewayProcess) -> None:
    with Watch(gateway), ThreadPoolExecutor(40) as pool:
        heads = [pool.submit(slow_head, gateway.url) for _ in range(20)]
        bodies = [pool.submit(slow_body, gateway.url) for _ in range(20)]
        outcomes = [future.result() for future in heads + bodies]

    statuses = [reply and reply.status for reply, _ in outcomes]
    assert statuses == [408] * 40
    assert max(took for _, took in outcomes) < READ_TIMEOUT_S + SLACK_S


def declared_but_not_sent(url: str) -> Reply | None:
    """A body that claims 30 MB, of which a few pieces come."""
    with connect(url) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
            b"Content-Type: application/json\r\nContent-Length: 30000000\r\n\r\n"
        )
        drip(sock, b"[" * 4096, 0.1, until=time.monotonic() + READ_TIMEOUT_S + SLACK_S)
        return read_reply(sock)


def test_a_declared_length_is_not_held_before_it_arrives(gateway: GatewayProcess) -> None:
    with Watch(gateway, rss_growth_mb=20), ThreadPoolExecutor(40) as pool:
        replies = list(pool.map(lambda _: declared_but_not_sent(gateway.url), range(40)))

    assert [reply and reply.status for reply in replies] == [408] * 40


def test_idle_connections_are_closed_after_the_idle_timeouts(gateway: GatewayProcess) -> None:
    with Watch(gateway), connect(gateway.url) as silent, connect(gateway.url) as kept_alive:
        kept_alive.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        answer = b""
        while not answer.endswith(b'{"status":"ok"}'):
            answer += kept_alive.recv(65536)
        started = time.monotonic()
        silent_closed = silent.recv(1)  # b"" once the server closes it
        kept_alive_closed = kept_alive.recv(1)
        took = time.monotonic() - started

    assert answer.startswith(b"HTTP/1.1 200")
    assert (silent_closed, kept_alive_closed) == (b"", b"")
    assert took < READ_TIMEOUT_S + SLACK_S


def test_connections_beyond_the_cap_get_503_while_health_answers(gateway: GatewayProcess) -> None:
    with Watch(gateway):
        idle = [connect(gateway.url, timeout_s=READ_TIMEOUT_S + SLACK_S) for _ in range(300)]
        try:
            reply = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                json={"model": "inspect", "messages": [{"role": "user", "content": "hi"}]},
            )
            closed_by_server = sum(sock.recv(1) == b"" for sock in idle)
        finally:
            for sock in idle:
                sock.close()

    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "1"
    assert reply.json()["error"]["code"] == "server_busy"
    assert closed_by_server == 300


def open_files_limit(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise LookupError("no open files limit")


def test_the_open_files_soft_limit_is_raised_to_the_hard_limit(gateways: Gateways) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(256, hard - 1)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        gateway = gateways.start(gateway_config())  # inherits the lowered limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    assert open_files_limit(gateway.process.pid) == (hard, hard)
    assert f"open files limit raised from {lowered} to {hard}" in gateway.log_text()
