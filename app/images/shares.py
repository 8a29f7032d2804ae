"""Fair shares of the image fetch pool: no client holds more than its share of connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FetchShares:
    """At most `per_client` fetches at once for one client (a gateway key, or the address of a
    keyless caller); the others wait their turn in their own queue, so a client sending slow
    image URLs only ever slows itself down."""

    def __init__(self, per_client: int) -> None:
        self._per_client = per_client
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def slot(self, client: str) -> AsyncIterator[None]:
        """Hold one of `client`'s fetch slots for the block."""
        slots = self._slots.get(client)
        if slots is None:
            slots = self._slots[client] = asyncio.Semaphore(self._per_client)
        self._users[client] = self._users.get(client, 0) + 1
        try:
            async with slots:
                yield
        finally:
            # A client with nothing in flight or queued leaves nothing behind.
            self._users[client] -= 1
            if not self._users[client]:
                del self._users[client], self._slots[client]
