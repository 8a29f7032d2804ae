"""HTTP/1.1 as clients speak it, through the server `python -m app` starts: `Expect:
100-continue`, pipelining, requests to upgrade the connection, HEAD and OPTIONS."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.hostile.raw import Reply, connect, read_reply
from tests.ops.configs import gateway_config
from tests.processes import GatewayProcess, Gateways

pytestmark = pytest.mark.e2e

KEY = "protocol-test-key"
MAX_REQUEST_BYTES = 64 * 1024
KEEPALIVE_S = 5.0
# Well under the keep-alive timeout: a connection the server means to close closes by then.
CLOSED_WITHIN_S = 1.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    launcher = Gateways(tmp_path_factory.mktemp("protocol"))
    server = {
        "api_keys": [KEY],
        "max_request_bytes": MAX_REQUEST_BYTES,
        "keepalive_timeout_s": KEEPALIVE_S,
    }
    try:
        yield launcher.start(gateway_config(server=server))
    finally:
        launcher.stop_all()


def chat_body(prompt: str) -> bytes:
    return orjson.dumps({"model": "inspect", "messages": [{"role": "user", "content": prompt}]})


def post_head(length: int, *extra: str, path: str = "/v1/chat/completions") -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: gateway",
        f"Authorization: Bearer {KEY}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_framed(sock: socket.socket, buffered: bytearray, *, to_head: bool = False) -> Reply:
    """One reply framed by its `content-length`, read from `sock` after what `buffered`
    already holds (what is read past it stays there, for the next reply). A reply `to_head`
    has no body, whatever its `content-length` says."""
    while b"\r\n\r\n" not in buffered:
        buffered += receive(sock)
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if to_head else int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += receive(sock)
    buffered[:] = rest[length:]
    return Reply(int(status_line.split()[1]), headers, rest[:length])


def receive(sock: socket.socket) -> bytes:
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("the server closed the connection")
    return data


def closes_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds`, sending nothing more."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def prompt_chars(reply: Reply) -> str:
    """What `inspect` says of the prompt it was given."""
    content: str = orjson.loads(reply.body)["choices"][0]["message"]["content"]
    return content.splitlines()[-1]


def test_a_client_that_expects_100_continue_gets_it_before_sending_its_body(
    gateway: GatewayProcess,
) -> None:
    body = chat_body("a question held back until the server asks for it")
    with connect(gateway.url) as sock:
        sock.sendall(post_head(len(body), "Expect: 100-continue"))
        interim = sock.recv(65536)
        sock.sendall(body)
        buffered = bytearray()
        reply = read_framed(sock, buffered)

    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert reply.status == 200
    assert (
        prompt_chars(reply)
        == f"prompt: {len('a question held back until the server asks for it')} characters"
    )


@pytest.mark.parametrize(
    ("extra", "status", "code"),
    [
        (("Expect: 100-continue",), 413, "request_too_large"),
        (("Expect: 100-continue", "Authorization: Bearer wrong"), 401, "invalid_api_key"),
    ],
    ids=["over-the-size-limit", "wrong-key"],
)
def test_a_request_refused_before_its_body_gets_no_100_continue_and_the_connection_ends(
    gateway: GatewayProcess, extra: tuple[str, ...], status: int, code: str
) -> None:
    length = MAX_REQUEST_BYTES * 2 if status == 413 else 100
    head = post_head(length, *extra)
    if status == 401:  # the wrong key replaces the right one
        head = head.replace(f"Authorization: Bearer {KEY}\r\n".encode(), b"")
    with connect(gateway.url) as sock:
        sock.sendall(head)
        buffered = bytearray()
        reply = read_framed(sock, buffered)
        closed = closes_within(sock, CLOSED_WITHIN_S)

    assert reply.status == status
    assert orjson.loads(reply.body)["error"]["code"] == code
    assert reply.headers["connection"] == "close"
    assert buffered == b""  # no 100 Continue came first, nor anything after
    assert closed


def test_pipelined_requests_with_bodies_are_answered_in_order(gateway: GatewayProcess) -> None:
    prompts = ["first", "the second one", "third, the longest of the three prompts"]
    bodies = [chat_body(prompt) for prompt in prompts]
    requests = b"".join(post_head(len(body)) + body for body in bodies)
    with connect(gateway.url) as sock:
        sock.sendall(requests)  # all at once, before any answer
        buffered = bytearray()
        replies = [read_framed(sock, buffered) for _ in prompts]
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        still_open = read_framed(sock, buffered)

    assert [reply.status for reply in replies] == [200, 200, 200]
    assert [prompt_chars(reply) for reply in replies] == [
        f"prompt: {len(prompt)} characters" for prompt in prompts
    ]
    assert still_open.status == 200


UPGRADES = {
    "websocket": (
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ),
    "h2c": (
        "Connection: Upgrade, HTTP2-Settings",
        "Upgrade: h2c",
        "HTTP2-Settings: AAMAAABkAAQCAAAA",
    ),
}


@pytest.mark.parametrize("upgrade", sorted(UPGRADES))
def test_an_upgrade_request_is_answered_as_a_plain_request_and_the_connection_ends(
    gateway: GatewayProcess, upgrade: str
) -> None:
    asking = "".join(f"{line}\r\n" for line in UPGRADES[upgrade]).encode()
    with connect(gateway.url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n" + asking + b"\r\n")
        buffered = bytearray()
        health = read_framed(sock, buffered)
        # Nothing more is read on a connection that asked to change protocols.
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        closed = closes_within(sock, CLOSED_WITHIN_S)

    assert (health.status, health.body) == (200, b'{"status":"ok"}')
    assert "upgrade" not in health.headers
    assert closed
    assert [r for r in gateway.log_records() if r["level"] in ("warning", "error")] == []


def sent_in_pieces(sock: socket.socket, data: bytes, cuts: list[int]) -> None:
    """`data` in pieces cut at `cuts`, each its own read at the server."""
    for start, stop in zip([0, *cuts], [*cuts, len(data)], strict=True):
        sock.sendall(data[start:stop])
        time.sleep(0.05)


@pytest.mark.parametrize("upgrade", sorted(UPGRADES))
@pytest.mark.parametrize(
    "cut",
    ["whole", "body-in-pieces", "head-in-pieces"],
)
def test_an_upgrade_request_with_a_body_is_answered_with_its_body(
    gateway: GatewayProcess, upgrade: str, cut: str
) -> None:
    """As `curl --http2` sends a POST to an http:// URL: the HTTP parser stops at the end of
    the head of a request that asks to upgrade, and its body must still reach the handler."""
    prompt = "asked while asking to switch protocols"
    body = chat_body(prompt)
    head = post_head(len(body), *UPGRADES[upgrade])
    cuts = {
        "whole": [],
        "body-in-pieces": [len(head) + 5, len(head) + 20],
        "head-in-pieces": [len(head) - 3, len(head) - 1],  # inside the blank line
    }[cut]
    with connect(gateway.url) as sock:
        sent_in_pieces(sock, head + body, cuts)
        buffered = bytearray()
        reply = read_framed(sock, buffered)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        closed = closes_within(sock, CLOSED_WITHIN_S)

    assert reply.status == 200, reply.body
    assert prompt_chars(reply) == f"prompt: {len(prompt)} characters"
    assert closed
    assert [r for r in gateway.log_records() if r["level"] in ("warning", "error")] == []


def test_an_upgrade_request_with_a_body_of_unknown_length_is_refused_saying_why(
    gateway: GatewayProcess,
) -> None:
    body = chat_body("chunked")
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
        + f"Authorization: Bearer {KEY}\r\n".encode()
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        + "".join(f"{line}\r\n" for line in UPGRADES["h2c"]).encode()
        + b"\r\n"
    )
    with connect(gateway.url) as sock:
        sock.sendall(head + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        reply = read_reply(sock)

    assert reply is not None
    assert reply.status == 400
    message = orjson.loads(reply.body)["error"]["message"]
    assert "'Upgrade: h2c'" in message
    assert "Content-Length" in message
    assert reply.headers["connection"] == "close"


def test_head_answers_like_get_without_a_body(gateway: GatewayProcess) -> None:
    with connect(gateway.url) as sock:
        sock.sendall(
            b"HEAD /health HTTP/1.1\r\nHost: gateway\r\n\r\n"
            b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n"
        )
        buffered = bytearray()
        head = read_framed(sock, buffered, to_head=True)
        get = read_framed(sock, buffered)

    assert (head.status, get.status) == (200, 200)
    assert head.headers["content-length"] == get.headers["content-length"] == "15"
    assert get.body == b'{"status":"ok"}'  # the HEAD sent no body before it


def test_options_without_cors_is_a_405_naming_the_methods(gateway: GatewayProcess) -> None:
    with connect(gateway.url) as sock:
        sock.sendall(
            b"OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n"
        )
        reply = read_reply(sock)

    assert reply is not None
    assert reply.status == 405
    assert reply.headers["allow"] == "POST"
    assert orjson.loads(reply.body)["error"]["code"] == "method_not_allowed"


def test_a_request_with_a_body_after_one_without_on_a_kept_connection(
    gateway: GatewayProcess,
) -> None:
    """Keep-alive across requests of both kinds, and the idle connection closed after the
    keep-alive timeout."""
    body = chat_body("after a GET")
    with connect(gateway.url, timeout_s=KEEPALIVE_S * 3) as sock:
        buffered = bytearray()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        first = read_framed(sock, buffered)
        sock.sendall(post_head(len(body)) + body)
        second = read_framed(sock, buffered)
        started = time.monotonic()
        closed = closes_within(sock, KEEPALIVE_S * 2)
        idle_s = time.monotonic() - started

    assert (first.status, second.status) == (200, 200)
    assert closed
    assert KEEPALIVE_S - 0.5 < idle_s < KEEPALIVE_S * 2
