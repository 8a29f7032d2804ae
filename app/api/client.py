"""Watching the client of one request: its disconnect cancels the work done for it, in both
modes, and a quiet stream gets its keepalives from the same watch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from starlette.types import Receive

from app.errors import ClientClosedRequest

Keepalive = Callable[[], Awaitable[None]]


class ClientWatch:
    """One helper task per request, started once the body is read (per ASGI the next message
    is then the disconnect). On disconnect it cancels the task serving the request: upstream
    requests close and job polling stops, before or after the first byte.

    While a stream is open, `pace` also has it send a keepalive whenever the stream has been
    quiet for `keepalive_s` (`server.stream_keepalive_s`); relaying a chunk then costs one
    `sent()` call and nothing more.
    """

    def __init__(self, receive: Receive, keepalive_s: float) -> None:
        self._receive = receive
        self._task: asyncio.Task[None] | None = None
        self._served: asyncio.Task[object] | None = None
        self._keepalive: Keepalive | None = None
        self._interval_s = keepalive_s
        self._last_write = 0.0
        self.gone = False

    def start(self) -> None:
        if self._task is None:
            self._served = asyncio.current_task()
            self._task = asyncio.get_running_loop().create_task(self._listen())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # The cancelled listener's traceback holds its frame, and so this watch: let go of
            # the task, or every request would leave a reference cycle for the garbage
            # collector, whose pauses then stall the event loop.
            self._task = None

    def pace(self, keepalive: Keepalive) -> None:
        """From now on, send `keepalive()` whenever nothing was sent for `keepalive_s`."""
        self._keepalive = keepalive
        self.sent()
        # The listener may be parked on `receive()` with no timeout: start it over with one.
        self.stop()
        self.start()

    def sent(self) -> None:
        self._last_write = asyncio.get_running_loop().time()

    @contextmanager
    def closing(self) -> Iterator[None]:
        """Turn the cancellation this watch caused into `ClientClosedRequest`; any other
        cancellation (the server shutting down) goes on as it is."""
        try:
            yield
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.gone and task is not None and task.uncancel() == 0:
                raise ClientClosedRequest("the client closed the request") from None
            raise

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            timeout = None
            if self._keepalive is not None:
                quiet_for = loop.time() - self._last_write
                if quiet_for >= self._interval_s:
                    await self._keepalive()
                    self.sent()
                    continue
                timeout = self._interval_s - quiet_for
            try:
                async with asyncio.timeout(timeout):
                    message = await self._receive()
            except TimeoutError:
                continue
            if message["type"] == "http.disconnect":
                self.gone = True
                if self._served is not None:
                    self._served.cancel()
                return
