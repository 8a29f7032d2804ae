"""HTTP/1.1 by hand, for requests no client library would send: endless headers, slow drips."""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def connect(url: str, timeout_s: float = 10.0) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout_s)


def read_reply(sock: socket.socket) -> Reply | None:
    """The reply the server sends before it closes, or None if it closes saying nothing."""
    data = b""
    while chunk := _recv(sock):
        data += chunk
    if not data:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(status_line.split()[1]), headers, body)


def send_until_answered(sock: socket.socket, head: bytes, filler: bytes, total: int) -> int:
    """Send `head`, then `filler` again and again up to `total` bytes, stopping early once the
    server answers (as curl does). Returns how many bytes went out."""
    sock.sendall(head)
    sent = len(head)
    while sent < total:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        try:
            sock.sendall(filler)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(filler)
    return sent


def drip(sock: socket.socket, data: bytes, every_s: float, until: float) -> bool:
    """Send `data` one byte at a time, `every_s` apart, until the deadline `until` (a monotonic
    time) or until the server closes or answers. Whether the server cut the connection short."""
    for byte in data:
        if time.monotonic() >= until:
            return False
        readable, _, _ = select.select([sock], [], [], every_s)
        if readable:
            return True
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return True
    return False


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""
