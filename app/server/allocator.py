"""Process memory: keep a gateway that relays multi-MB images from hoarding freed memory, and
its garbage collector from rescanning what was built at startup."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

# glibc mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_TRIM = 16 * 1024 * 1024
_MMAP_FROM = 1024 * 1024


def release_large_buffers() -> bool:
    """Two arenas instead of one per thread, and a fixed mmap threshold of 1 MiB.

    By default glibc gives every thread its own arena and raises its mmap threshold each time
    a large block is freed; after that, multi-MB bodies come from those heaps and fragment
    them, and a gateway relaying 4 MB images keeps hundreds of MB it no longer uses. With
    these settings multi-MB buffers get their own mappings and go back to the OS when freed.
    Each fresh mapping costs a page fault per 4 KiB, so the threshold sits above the socket
    reads and body pieces (up to 256 KiB) that every upload goes through: those are reused
    from the heap. Does nothing where the C library is not glibc; returns whether the
    settings took.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return (
        bool(mallopt(_M_ARENA_MAX, 2))
        and bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM))
        and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM))
    )


def settle_heap() -> None:
    """Take everything built at startup (modules, schemas, routes, about 90,000 objects) out of
    the cyclic garbage collector's view.

    A full collection otherwise walks all of them again every few thousand requests, which
    cost about a sixth of the CPU spent per request; afterwards it walks only what requests
    left behind. Call once, when the app is built and before it serves.
    """
    gc.collect()
    gc.freeze()
