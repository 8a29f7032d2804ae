"""Reading an upstream's `text/event-stream`, as WHATWG's HTML standard says to interpret one:
lines end at CRLF, CR or LF, a line starting with a colon is a comment, and the `data` lines
of an event are joined with newlines and dispatched at the blank line that ends it.

Only the data matters to the gateway: `event`, `id` and `retry` fields are read past. This is
what httpx-sse's decoders do behind its `EventSource` (and openai-python's `SSEDecoder`), but
`EventSource` reads the body through httpx's text decoding, which costs more per event than
the parsing, and buffers an unfinished line without bound; the gateway feeds text as it comes
off the connection, and caps how much one event holds (`iter_sse_data`).
"""

from __future__ import annotations


class LineDecoder:
    """Text in, whole lines out (without their line endings), as pieces of text arrive."""

    def __init__(self) -> None:
        self._buffer: list[str] = []
        self._trailing_cr = False

    def decode(self, text: str) -> list[str]:
        """The lines that `text` finishes; what follows the last line ending waits."""
        if self._trailing_cr:  # a CR may be the first half of a CRLF: it waits for the next
            text = "\r" + text
            self._trailing_cr = False
        if text.endswith("\r"):
            self._trailing_cr = True
            text = text[:-1]
        if not text:
            return []
        finished = text[-1] in "\r\n"
        lines = _split(text)
        if len(lines) == 1 and not finished:
            self._buffer.append(lines[0])
            return []
        if self._buffer:
            lines[0] = "".join(self._buffer) + lines[0]
            self._buffer = []
        if not finished:
            self._buffer = [lines.pop()]
        return lines

    def flush(self) -> list[str]:
        """The last line, when the stream ends without a line ending."""
        if not self._buffer and not self._trailing_cr:
            return []
        line = "".join(self._buffer)
        self._buffer, self._trailing_cr = [], False
        return [line]


class EventDecoder:
    """Lines in, the data of each event out: `decode(line)` is the event's data once `line`
    ends an event that has any, else None."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def decode(self, line: str) -> str | None:
        if not line:
            if not self._data:
                return None
            data = "\n".join(self._data)
            self._data = []
            return data or None
        if line[0] == ":":
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value[:1] == " " else value)
        return None


def _split(text: str) -> list[str]:
    """`text` split at CRLF, CR and LF only (`str.splitlines` splits at more); a line ending
    at the very end leaves no empty line after it."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if text[-1] == "\n":
        lines.pop()
    return lines
