"""Stop sequences applied by the gateway, for upstreams that have none."""

from __future__ import annotations


class StopFilter:
    """Cuts a text stream at the first stop sequence. Text that might be the start of one is
    held back until the next piece tells, so nothing past a stop ever leaves."""

    def __init__(self, stops: list[str]) -> None:
        self._stops = [stop for stop in stops if stop]
        self._hold = max((len(stop) for stop in self._stops), default=1) - 1
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The part of `text` (with what was held back) that is safe to send now."""
        if self.stopped:
            return ""
        buffer = self._pending + text
        cut = min((i for stop in self._stops if (i := buffer.find(stop)) >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            return buffer[:cut]
        keep = self._partial_suffix(buffer)
        self._pending = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """What is still held back once the stream has ended."""
        rest, self._pending = self._pending, ""
        return "" if self.stopped else rest

    def _partial_suffix(self, buffer: str) -> int:
        """The length of the longest end of `buffer` that begins some stop sequence."""
        for length in range(min(self._hold, len(buffer)), 0, -1):
            tail = buffer[-length:]
            if any(stop.startswith(tail) for stop in self._stops):
                return length
        return 0


def apply_stops(text: str, stops: list[str]) -> tuple[str, bool]:
    """`text` cut at its first stop sequence, and whether one was found."""
    stop_filter = StopFilter(stops)
    head = stop_filter.feed(text)
    return head + stop_filter.flush(), stop_filter.stopped
