"""Reading request bodies, into buffers reused from one request to the next when large."""

from __future__ import annotations

import sys

from starlette.types import Receive, Scope

from app.errors import ClientClosedRequest, RequestTooLarge

# Smaller buffers come from the allocator's heap, already mapped: only larger ones are kept.
MIN_POOLED_BYTES = 1024 * 1024
_ZEROS = bytes(64 * 1024)
# References to a free buffer while `take` looks at it: the pool's list, the loop's variable
# and `sys.getrefcount`'s argument. Any more, and something still reads or slices it.
_UNUSED_REFS = 3


def _counts_references() -> bool:
    """Whether this interpreter's reference counts say what `take` relies on (CPython's do;
    one that counted some references lazily would never get a buffer back)."""
    free = [bytearray(1)]
    counts = []
    for index in range(len(free)):
        buffer = free[index]
        counts.append(sys.getrefcount(buffer))
        held = memoryview(buffer)
        counts.append(sys.getrefcount(buffer))
        held.release()
    return counts == [_UNUSED_REFS, _UNUSED_REFS + 1]


_REUSABLE = _counts_references()


class BodyBuffers:
    """Buffers that large request bodies are read into, kept for later requests.

    A fresh multi-MB buffer is memory the system maps anew, and every 4 KiB of it costs a
    page fault when first written: for a 4 MB image that costs more than copying it. A kept
    buffer is handed out again only once nothing else refers to it (no slice of it, no worker
    thread still reading it), and at most `keep_bytes` are kept in all.
    """

    def __init__(self, keep_bytes: int) -> None:
        self._keep_bytes = keep_bytes if _REUSABLE else 0
        self._free: list[bytearray] = []

    def take(self, size: int) -> bytearray | None:
        """A kept buffer of `size` bytes, for a body of that length (what it holds is
        stale), if one is free."""
        for index in range(len(self._free)):
            buffer = self._free[index]
            room = buffer.__alloc__()
            # Resizing within these bounds keeps the memory it has (CPython's bytearray).
            if size < room <= 2 * size and sys.getrefcount(buffer) == _UNUSED_REFS:
                del self._free[index]
                _resize(buffer, size)
                return buffer
        return None

    def give_back(self, buffer: bytearray) -> None:
        """Keep `buffer` for a later body, if there is room; it may still be in use."""
        size = buffer.__alloc__()
        if not MIN_POOLED_BYTES < size <= self._keep_bytes or any(b is buffer for b in self._free):
            return
        kept = self.kept_bytes
        while kept + size > self._keep_bytes:
            kept -= self._free.pop(0).__alloc__()  # the oldest goes first
        self._free.append(buffer)

    @property
    def kept_bytes(self) -> int:
        return sum(buffer.__alloc__() for buffer in self._free)


def _resize(buffer: bytearray, size: int) -> None:
    if len(buffer) > size:
        del buffer[size:]
    while len(buffer) < size:
        buffer += _ZEROS[: size - len(buffer)]


async def read_body(
    scope: Scope, receive: Receive, limit: int, buffers: BodyBuffers
) -> bytes | bytearray:
    """The request body, refused with 413 as soon as it is known to be over `limit`. A body
    in one piece is kept as it came. One in pieces is copied into a kept buffer of its
    declared length when one is free, or else grows in one as it arrives (never to more than
    came: a client may declare 32 MB and send 1 kB); a list joined at the end would hold it
    twice."""
    declared = -1
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            declared = int(value)
            if declared > limit:
                raise RequestTooLarge(f"the request body is over {limit} bytes")
    body: bytes | bytearray = b""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientClosedRequest("the client closed the request")
        chunk = message.get("body", b"")
        if size + len(chunk) > limit:
            raise RequestTooLarge(f"the request body is over {limit} bytes")
        if not body:
            body = chunk
        else:
            if isinstance(body, bytes):
                body = _buffer(body, declared, buffers)
            if size + len(chunk) <= len(body):
                _put(body, size, chunk)
            else:
                body += chunk
        size += len(chunk)
        if not message.get("more_body", False):
            if isinstance(body, bytearray) and len(body) > size:
                del body[size:]  # the client sent less than it declared
            return body


def _buffer(first: bytes, declared: int, buffers: BodyBuffers) -> bytearray:
    """A buffer holding `first`: a kept one of the `declared` length, if there is one."""
    kept = buffers.take(declared) if declared > MIN_POOLED_BYTES else None
    if kept is None:
        return bytearray(first)
    _put(kept, 0, first)
    return kept


def _put(buffer: bytearray, at: int, data: bytes) -> None:
    """Copy `data` into `buffer` at `at`, once: assigning bytes to a slice of a bytearray
    copies them into a new bytearray first."""
    with memoryview(buffer) as view:
        view[at : at + len(data)] = data
