"""OpenAI-style ids (`resp_…`, `msg_…`, `fc_…`): 24 random bytes each, from the OS in batches."""

from __future__ import annotations

import os
from collections import deque

ID_BYTES = 24
BATCH = 64  # ids per call for random bytes: a response and its items take a few each

# Ready hex suffixes; `popleft` and `extend` are atomic, so threads never share one. A forked
# child starts empty: it must not hand out its parent's ids.
_ready: deque[str] = deque()
os.register_at_fork(after_in_child=_ready.clear)


def new_id(prefix: str) -> str:
    """`prefix_` and 48 hex digits, as random as `secrets.token_hex(24)` gives."""
    try:
        suffix = _ready.popleft()
    except IndexError:
        suffix = _refill()
    return f"{prefix}_{suffix}"


def _refill() -> str:
    digits = os.urandom(ID_BYTES * BATCH).hex()
    size = ID_BYTES * 2
    _ready.extend(digits[start : start + size] for start in range(size, len(digits), size))
    return digits[:size]
