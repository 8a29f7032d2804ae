"""`python -m app --config PATH [--host H] [--port P] [--workers N]`."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile

import uvicorn
from uvicorn.supervisors import Multiprocess

from app.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
from app.observe.logs import configure_logging
from app.observe.metrics import MULTIPROCESS_ENV
from app.server.allocator import release_large_buffers
from app.server.listener import WORKERS_ENV
from app.server.protocol import GatewayServerConfig, raise_open_files_limit


class GracefulMultiprocess(Multiprocess):
    """The worker supervisor, but on SIGTERM or SIGINT it closes its copy of the listening
    socket first, so that new connections are refused while the workers drain."""

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()

    def _stop_listening(self) -> None:
        for socket in self.sockets:
            socket.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--config", default=os.environ.get("GATEWAY_CONFIG", DEFAULT_CONFIG_PATH))
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get(WORKERS_ENV, "1")))
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "info"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    release_large_buffers()
    args = parse_args(argv)
    try:
        config = load_config(args.config)  # fail here, once, with a readable message
    except ConfigError as exc:
        print(f"vision-gateway: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    os.environ["GATEWAY_CONFIG"] = os.path.abspath(args.config)
    os.environ["LOG_LEVEL"] = args.log_level
    os.environ[WORKERS_ENV] = str(args.workers)  # each worker's listener reads it
    metrics_dir = None
    if args.workers > 1 and MULTIPROCESS_ENV not in os.environ:
        metrics_dir = tempfile.mkdtemp(prefix="vision-gateway-metrics-")
        os.environ[MULTIPROCESS_ENV] = metrics_dir
    configure_logging(config.server.log_format, config.secrets(), args.log_level)
    raise_open_files_limit()
    server_config = GatewayServerConfig(
        "app.main:app",
        limits=config.server,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        log_level=args.log_level,
        access_log=False,
        loop="app.server.listener:new_event_loop",
        # Open streams may finish within the grace period; then they are cancelled.
        timeout_graceful_shutdown=math.ceil(config.server.shutdown_grace_s),
    )
    try:
        # Bound here, so that every worker's loop serves it with `app.server.listener`'s catch-up.
        socket = server_config.bind_socket()
        if args.workers > 1:
            GracefulMultiprocess(server_config, sockets=[socket]).run()
        else:
            server = uvicorn.Server(server_config)
            server.run(sockets=[socket])
            if not server.started:
                return 3
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
