"""What the Takeoff and Prediction Guard fakes share: the record of a request, refusals,
scripted replies, multipart parsing and SSE framing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from python_multipart.multipart import MultipartParser, parse_options_header

R = TypeVar("R")


@dataclass(frozen=True)
class Part:
    """One part of a multipart body, as it arrived."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Received:
    """One request as a fake saw it, and why the fake refused it, if it did."""

    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None  # the JSON body, or Takeoff's `json_data` part
    parts: list[Part] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)  # data URIs: type and bytes
    refused: str | None = None
    raw: bytes = b""  # the body's bytes as they came
    answered_at: float | None = None  # when the fake answered (`time.monotonic()`)
    abandoned_at: float | None = None  # when it saw its caller gone, if it did

    def part(self, name: str) -> Part:
        [found] = [part for part in self.parts if part.name == name]
        return found


class Refused(Exception):
    """A request the fake turns away, with the status and message its real server gives."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Script(Generic[R]):
    """Replies given in turn; the last one repeats, and none scripted means a default one."""

    def __init__(self, default: Callable[[], R]) -> None:
        self._default = default
        self._replies: list[R] = []

    def set(self, replies: tuple[R, ...]) -> None:
        self._replies = list(replies)

    def next(self) -> R:
        if not self._replies:
            return self._default()
        return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]


def sse(data: str) -> bytes:
    """One event; a payload with newlines becomes several `data:` lines, as SSE requires."""
    return b"".join(b"data: " + line.encode() + b"\n" for line in data.split("\n")) + b"\n"


def parse_multipart(body: bytes, boundary: bytes) -> list[Part]:
    """The parts of a multipart/form-data body, with python-multipart doing the parsing."""
    parts: list[Part] = []
    headers: dict[str, str] = {}
    name: list[bytes] = []
    value: list[bytes] = []
    data: list[bytes] = []
    ended: list[bool] = []

    def begin() -> None:
        headers.clear()
        data.clear()

    def header_end() -> None:
        headers[b"".join(name).decode().lower()] = b"".join(value).decode()
        name.clear()
        value.clear()

    def part_end() -> None:
        parts.append(_part(headers, b"".join(data)))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": begin,
            "on_header_field": lambda b, start, end: name.append(b[start:end]),
            "on_header_value": lambda b, start, end: value.append(b[start:end]),
            "on_header_end": header_end,
            "on_part_data": lambda b, start, end: data.append(b[start:end]),
            "on_part_end": part_end,
            "on_end": lambda: ended.append(True),
        },
    )
    parser.write(body)
    parser.finalize()
    if not ended:
        raise ValueError("the body ends before its closing boundary")
    return parts


def _part(headers: dict[str, str], data: bytes) -> Part:
    disposition, params = parse_options_header(headers.get("content-disposition"))
    if disposition != b"form-data" or b"name" not in params:
        raise ValueError("a part has no form-data Content-Disposition with a name")
    filename = params.get(b"filename")
    return Part(
        name=params[b"name"].decode(),
        filename=filename.decode() if filename is not None else None,
        content_type=headers.get("content-type"),
        data=data,
    )
