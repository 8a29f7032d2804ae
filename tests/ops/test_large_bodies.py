"""Large request bodies through `python -m app`: read piece by piece as they come, whatever the
pace, and the image in them reaches the upstream as the client sent it."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from tests.e2e.deployments import entry, png_bytes
from tests.e2e.fakes.openai_compat import FakeUpstream
from tests.ops.configs import gateway_config
from tests.processes import Gateways

pytestmark = pytest.mark.e2e
IMAGE = "data:image/png;base64," + base64.b64encode(png_bytes(900, 800, None)).decode()


def body_with(text: str) -> bytes:
    part = {"type": "image_url", "image_url": {"url": IMAGE}}
    message = {"role": "user", "content": [{"type": "text", "text": text}, part]}
    return json.dumps({"model": "vision", "messages": [message]}).encode()


def post_in_pieces(url: str, body: bytes, piece: int, pause_s: float) -> bytes:
    """POST `body` a `piece` of bytes at a time, `pause_s` apart; the whole reply."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode())
        for at in range(0, len(body), piece):
            sock.sendall(body[at : at + piece])
            if pause_s:
                time.sleep(pause_s)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize(
    ("piece", "pause_s"),
    [(7919, 0.0), (300_000, 0.0), (64 * 1024, 0.01), (len(IMAGE) + 1000, 0.0)],
)
def test_a_large_body_in_pieces_reaches_the_upstream_whole(
    gateways: Gateways, upstream: FakeUpstream, piece: int, pause_s: float
) -> None:
    gateway = gateways.start(gateway_config([entry("vision", upstream)]))
    texts = [f"request {n}: " + os.urandom(8).hex() for n in range(4)]

    with ThreadPoolExecutor(4) as pool:
        replies = list(
            pool.map(lambda t: post_in_pieces(gateway.url, body_with(t), piece, pause_s), texts)
        )

    assert all(reply.startswith(b"HTTP/1.1 200") for reply in replies), replies[0][:300]
    received = {r.body["messages"][0]["content"][0]["text"]: r for r in upstream.received}
    assert sorted(received) == sorted(texts)
    for text in texts:
        sent = received[text].body["messages"][0]["content"][1]["image_url"]["url"]
        assert sent == IMAGE
        assert json.dumps(IMAGE).encode() in received[text].raw
