"""What error messages quote of a client's input: a short prefix, never kilobytes of it."""

from __future__ import annotations

QUOTED_CHARS = 100


def shortened(text: str, limit: int = QUOTED_CHARS) -> str:
    """`text`, cut to its first `limit` characters (marked with "…") when longer."""
    return text if len(text) <= limit else text[:limit] + "…"
