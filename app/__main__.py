"""`python -m app --config PATH [--host H] [--port P] [--workers N]`."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import uvicorn

from app.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
from app.metrics import MULTIPROCESS_ENV


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--config", default=os.environ.get("GATEWAY_CONFIG", DEFAULT_CONFIG_PATH))
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GATEWAY_WORKERS", "1")))
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "info"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config)  # fail here, once, with a readable message
    except ConfigError as exc:
        print(f"vision-gateway: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    os.environ["GATEWAY_CONFIG"] = os.path.abspath(args.config)
    os.environ["LOG_LEVEL"] = args.log_level
    metrics_dir = None
    if args.workers > 1 and MULTIPROCESS_ENV not in os.environ:
        metrics_dir = tempfile.mkdtemp(prefix="vision-gateway-metrics-")
        os.environ[MULTIPROCESS_ENV] = metrics_dir
    try:
        uvicorn.run(
            "app.main:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=None,
            log_level=args.log_level,
            access_log=False,
            loop="uvloop",
            http="httptools",
            timeout_graceful_shutdown=int(config.server.shutdown_grace_s) or None,
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
