"""The upstream transport writing a body of several buffers: its length said up front."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.transport import WRITE_WINDOW, AiohttpTransport, BodyParts

pytestmark = pytest.mark.anyio


class Received:
    """What one request brought to a loopback server: its head, then its body."""

    def __init__(self) -> None:
        self.head: dict[str, str] = {}
        self.body = b""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[1:]
        self.head = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if line)
        }
        self.body = await reader.readexactly(int(self.head.get("content-length", "0")))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()


async def test_a_body_of_buffers_goes_out_with_its_length_and_unchunked() -> None:
    received = Received()
    server = await asyncio.start_server(received.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    large = bytes(range(256)) * (WRITE_WINDOW // 128)  # two windows and more
    parts = BodyParts([b'{"a": "', memoryview(large)[3:], b'"}'])
    # No Content-Length among the request's headers: the transport says it from the parts.
    request = httpx.Request("POST", f"http://127.0.0.1:{port}/v1/x", stream=parts)
    assert "content-length" not in request.headers
    transport = AiohttpTransport()
    try:
        response = await transport.handle_async_request(request)
        await response.aread()
        await response.aclose()
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()

    assert response.status_code == 204
    assert received.head["content-length"] == str(parts.size)
    assert "transfer-encoding" not in received.head
    assert received.body == b'{"a": "' + large[3:] + b'"}'
