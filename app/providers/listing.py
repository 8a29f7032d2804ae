"""What an upstream says it serves, asked for now and then and kept for a while."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

LIST_TTL_S = 600.0


class CachedList:
    """The result of `fetch()`, fetched again once it is `ttl_s` old."""

    def __init__(self, fetch: Callable[[], Awaitable[list[str]]], ttl_s: float = LIST_TTL_S):
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._fetched_at = float("-inf")
        self._items: list[str] = []

    async def get(self) -> list[str]:
        if time.monotonic() - self._fetched_at >= self._ttl_s:
            self._items = await self._fetch()
            self._fetched_at = time.monotonic()
        return self._items
