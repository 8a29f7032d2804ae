"""`python -m app --config PATH [--host H] [--port P] [--workers N]`."""

from __future__ import annotations

import argparse
import os
import sys

from app.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
from app.observe.logs import configure_logging
from app.server.allocator import release_large_buffers
from app.server.listener import WORKERS_ENV
from app.server.serve import serve


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
    configure_logging(config.server.log_format, config.secrets(), args.log_level)
    return serve(
        config, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level
    )


if __name__ == "__main__":
    sys.exit(main())
