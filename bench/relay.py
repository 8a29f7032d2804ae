"""A bare TCP relay in its own process: bytes from each client connection go to a connection
of its own to the target, and back, with nothing parsed or changed.

`python -m bench.relay --port P --target-port T` runs it. It is the floor of any proxy
written like the gateway (Python on uvloop, one process): the time-to-first-token scenario
measures it next to the gateway, so that the report shows how much of the gateway's added
TTFT an extra hop costs on this machine before any HTTP is read.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast

import uvloop

HOST = "127.0.0.1"


class _Side(asyncio.Protocol):
    """One end of a relayed connection; `peer` is the other end's transport."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.waiting: list[bytes] = []  # what came before the peer was connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self.waiting.append(data)
        else:
            peer.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    # Back-pressure: while the peer can't take more, stop reading this side.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class _Client(_Side):
    def __init__(self, target_port: int) -> None:
        super().__init__()
        self._target_port = target_port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(_Side, HOST, self._target_port)
        except OSError:
            if self.transport is not None:
                self.transport.close()
            return
        upstream.peer, self.peer = self, upstream
        assert upstream.transport is not None
        for data in self.waiting:
            upstream.transport.write(data)
        self.waiting.clear()


async def _serve(port: int, target_port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Client(target_port), HOST, port, backlog=2048)
    await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target-port", type=int, required=True)
    args = parser.parse_args(argv)
    uvloop.run(_serve(args.port, args.target_port))


if __name__ == "__main__":
    main()
