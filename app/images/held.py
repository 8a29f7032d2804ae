"""What the fetches of the requests in flight hold: bytes of image and document URLs, counted
as they arrive, per request and for the whole worker, until the request has ended."""

from __future__ import annotations

from app.errors import ImageTooLarge, ServerBusy
from app.observe.record import RequestRecord

MIB = 1024 * 1024


class FetchedBytes:
    """A request may hold `per_request` bytes of what it fetched, and the requests in flight
    `per_worker` together. A request's bytes are let go of when it ends (its record is
    closed), noticed the next time room is short."""

    def __init__(self, per_request: int, per_worker: int) -> None:
        self._per_request = per_request
        self._per_worker = per_worker
        self._held = 0
        self._holders: dict[int, RequestRecord] = {}

    @property
    def held(self) -> int:
        """Bytes the requests in flight hold (and those ended since room was last short)."""
        return self._held

    def room(self, record: RequestRecord) -> int:
        """How many more bytes the request may fetch."""
        return self._per_request - record.fetched_bytes

    def take(self, record: RequestRecord, size: int) -> None:
        """Count `size` more bytes fetched for the request: 400 `image_too_large` past its
        own budget, 503 `server_busy` past the worker's."""
        if record.fetched_bytes + size > self._per_request:
            raise ImageTooLarge(
                f"the images and documents this request fetches come to over "
                f"{self._per_request // MIB} MiB (images.max_fetched_bytes_per_request)"
            )
        if self._held + size > self._per_worker:
            self._let_go_of_ended()
            if self._held + size > self._per_worker:
                raise ServerBusy(
                    "the gateway holds as many fetched images as it may; try again shortly",
                    headers={"Retry-After": "1"},
                )
        record.fetched_bytes += size
        self._held += size
        self._holders[id(record)] = record

    def _let_go_of_ended(self) -> None:
        for key, record in list(self._holders.items()):
            if record.ended is not None:
                self._held -= record.fetched_bytes
                del self._holders[key]
