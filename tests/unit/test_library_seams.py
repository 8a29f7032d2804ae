"""What the gateway relies on of libraries beyond their documented interfaces, checked on the
installed releases: the server on uvicorn's protocol class, uvloop's loop and httptools, and
the upstream stream reader on httpx-sse's decoders. A release that renamed a callback would
otherwise leave a limit silently unapplied. pyproject.toml pins each of these libraries to the
releases checked here."""

from __future__ import annotations

import inspect
import re
import signal
from importlib.metadata import version
from pathlib import Path

import pytest
import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.supervisors import Multiprocess

from app.config import ServerConfig
from app.server.listener import CatchUpLoop
from app.server.protocol import BodyPieces, GatewayServerConfig, LimitedHttpProtocol

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def pinned(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The `>=low,<high` range pyproject.toml allows `name`."""
    found = re.search(rf'"{name}>=([\d.]+),<([\d.]+)', PYPROJECT.read_text())
    assert found, f"{name} is not pinned to a range in pyproject.toml"
    low, high = (tuple(int(n) for n in bound.split(".")) for bound in found.groups())
    return low, high


@pytest.mark.parametrize("name", ["uvicorn", "uvloop", "httptools", "httpx-sse"])
def test_the_installed_release_is_one_the_server_was_checked_against(name: str) -> None:
    low, high = pinned(name)
    installed = tuple(int(n) for n in re.findall(r"\d+", version(name))[:3])

    assert low <= installed < high, f"{name} {version(name)} is outside {low}..{high}"


def test_every_callback_the_protocol_extends_is_one_uvicorn_s_protocol_has() -> None:
    extended = {
        name
        for name, member in vars(LimitedHttpProtocol).items()
        if callable(member) and not name.startswith("_")
    }

    assert extended == {
        "connection_made",
        "connection_lost",
        "data_received",
        "on_message_begin",
        "on_url",
        "on_header",
        "on_headers_complete",
        "on_body",
        "on_message_complete",
        "on_response_complete",
    }
    for name in extended:
        theirs = inspect.signature(getattr(HttpToolsProtocol, name))
        ours = inspect.signature(getattr(LimitedHttpProtocol, name))
        assert list(theirs.parameters) == list(ours.parameters), name


def test_the_protocol_takes_what_uvicorn_gives_a_protocol_class() -> None:
    theirs = inspect.signature(HttpToolsProtocol.__init__)
    ours = inspect.signature(LimitedHttpProtocol.__init__)

    assert list(ours.parameters) == list(theirs.parameters)


def test_the_request_cycle_holds_a_body_as_body_pieces_expect() -> None:
    """`BodyPieces` takes the place of the cycle's `body`, a private attribute: uvicorn must
    start each read of the application with a fresh `bytearray`, add each piece with `+=`,
    weigh them with `len()` and hand them on with `bytes()`."""
    on_body = inspect.getsource(HttpToolsProtocol.on_body)
    receive = inspect.getsource(RequestResponseCycle.receive)
    made = inspect.getsource(RequestResponseCycle.__init__)

    assert "self.cycle.body += body" in on_body
    assert "len(self.cycle.body)" in on_body
    assert '"body": bytes(self.body)' in receive
    assert "self.body = bytearray()" in receive
    assert "self.body = bytearray()" in made


def test_body_pieces_hand_on_one_piece_as_it_is_and_several_joined() -> None:
    one, two = b"a" * 100_000, b"bc"
    body = BodyPieces()

    assert (len(body), bytes(body)) == (0, b"")
    body += one
    assert len(body) == 100_000
    assert bytes(body) is one  # not a copy
    body += two
    assert (len(body), bytes(body)) == (100_002, one + two)


def test_uvicorn_takes_the_protocol_class_the_loop_factory_and_no_websockets() -> None:
    config = GatewayServerConfig(
        "app.main:app", limits=ServerConfig(), loop="app.server.listener:new_event_loop"
    )

    assert config.http is LimitedHttpProtocol
    assert config.ws == "none"
    assert isinstance(config.get_loop_factory()(), CatchUpLoop)  # type: ignore[misc]
    assert issubclass(CatchUpLoop, uvloop.Loop)


def test_the_worker_supervisor_installs_its_signal_handlers_when_made() -> None:
    """The supervisor's copy of the listening socket is closed by a handler chained before
    the supervisor's own, which must be in place once it is made."""
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        Multiprocess(uvicorn.Config("app.main:app", workers=2), sockets=[])
        after = {signum: signal.getsignal(signum) for signum in before}
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)

    assert all(callable(after[signum]) and after[signum] != before[signum] for signum in before)


def test_httpx_sse_s_decoders_read_events_as_the_stream_reader_feeds_them() -> None:
    """`app.wire.sse` feeds httpx-sse's line and event decoders directly (its public
    `EventSource` reads an httpx response body through text decoding layers the gateway
    skips); they live in a private module of httpx-sse 0.4."""
    from httpx_sse._decoders import SSEDecoder, SSELineDecoder

    lines, events = SSELineDecoder(), SSEDecoder()
    found = []
    for piece in [': keepalive\r\n\r\ndata: {"a"', ": 1}\n", "\ndata: [DONE]\n\n"]:
        for line in lines.decode(piece):
            event = events.decode(line.rstrip("\n"))
            if event is not None and event.data:
                found.append(event.data)

    assert found == ['{"a": 1}', "[DONE]"]
