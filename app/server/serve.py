"""Serving the gateway as `python -m app` does: uvicorn with the gateway's protocol and event
loop, on one socket bound up front, in one process or under uvicorn's worker supervisor."""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import os
import shutil
import signal
import socket
import tempfile
from types import FrameType

import uvicorn
from uvicorn.supervisors import Multiprocess

from app.config import GatewayConfig
from app.observe.metrics import MULTIPROCESS_ENV
from app.server.listener import WORKERS_ENV
from app.server.protocol import GatewayServerConfig, raise_open_files_limit

logger = logging.getLogger(__name__)

# What `serve` returns when the server could not start (the app, or the socket, failed).
STARTUP_FAILED = 3


class ListenError(Exception):
    """The address can't be listened on; the message names it and says why."""

    status = STARTUP_FAILED


def open_to_all(host: str) -> bool:
    """Whether listening on `host` reaches beyond this machine (a name other than
    `localhost` may resolve anywhere, so it counts as beyond)."""
    if host.lower() == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True


def serve(config: GatewayConfig, *, host: str, port: int, workers: int, log_level: str) -> int:
    """Serve `config` (loaded from `$GATEWAY_CONFIG` again by each worker) until a signal
    ends it; the exit status."""
    os.environ[WORKERS_ENV] = str(workers)  # each worker's event loop reads it
    metrics_dir = None
    if workers > 1 and MULTIPROCESS_ENV not in os.environ:
        metrics_dir = tempfile.mkdtemp(prefix="vision-gateway-metrics-")
        os.environ[MULTIPROCESS_ENV] = metrics_dir
    raise_open_files_limit()
    server_config = GatewayServerConfig(
        "app.main:app",
        limits=config.server,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        log_level=log_level,
        access_log=False,
        # Whose X-Forwarded-For is believed is `server.trusted_proxies`' to say (see
        # app/api/forwarded.py); uvicorn would believe any from 127.0.0.1.
        proxy_headers=False,
        loop="app.server.listener:new_event_loop",
        # Open streams may finish within the grace period; then they are cancelled.
        timeout_graceful_shutdown=math.ceil(config.server.shutdown_grace_s),
    )
    try:
        # Bound here, so that every worker's loop serves it with `app.server.listener`'s catch-up.
        listening = _listen(host, port)
        if workers > 1:
            supervisor = Multiprocess(server_config, sockets=[listening])
            _stop_listening_on_signals(listening)
            supervisor.run()
            return 0
        server = uvicorn.Server(server_config)
        server.run(sockets=[listening])
        return 0 if server.started else STARTUP_FAILED
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound as uvicorn binds it; a failure names the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason += " (another process listens there: stop it, or pick another --port)"
        raise ListenError(f"cannot listen on {address}: {reason}") from None
    except UnicodeError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {address}: {exc}") from None
    logger.info("listening on http://%s", address)
    sock.set_inheritable(True)
    return sock


def _stop_listening_on_signals(listening: socket.socket) -> None:
    """On SIGTERM or SIGINT, close the supervisor's copy of the listening socket before the
    supervisor's own handler runs: once the workers have closed theirs as they drain, new
    connections are refused at once instead of waiting in a queue nobody reads."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        supervisors = signal.getsignal(signum)

        def stop_listening(
            number: int, frame: FrameType | None, supervisors: object = supervisors
        ) -> None:
            listening.close()
            if callable(supervisors):
                supervisors(number, frame)

        signal.signal(signum, stop_listening)
