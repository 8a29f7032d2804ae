"""The command line: `python -m app` serves a config, `python -m app check` checks one."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from app import __version__
from app.cli.check import BAD_CONFIG, check
from app.config import DEFAULT_CONFIG_PATH, ConfigError
from app.config.environment import DEFAULT_ENV_FILE, load_with_env_file
from app.observe.logs import configure_logging
from app.server.allocator import release_large_buffers
from app.server.listener import WORKERS_ENV
from app.server.serve import ListenError, open_to_all, serve

logger = logging.getLogger("app")

PROG = "python -m app"
DESCRIPTION = """\
Serve the vision gateway: an OpenAI-compatible API in front of vision-language models.

commands:
  (none)   serve the config, as the options below say
  check    validate a config without serving, and list the models it serves:
           python -m app check [--config PATH] [--env-file PATH]
"""
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 to 65535)")
    return value


def _config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=os.environ.get("GATEWAY_CONFIG", DEFAULT_CONFIG_PATH),
        help="the config file (default: %(default)s; $GATEWAY_CONFIG sets it)",
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="variables read into the environment before the config, where not already set "
        f"(default: {DEFAULT_ENV_FILE}, when there is one)",
    )


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"vision-gateway {__version__}")
    _config_options(parser)
    parser.add_argument(
        "--host",
        default=os.environ.get("HOST", "127.0.0.1"),
        help="the address to listen on; 0.0.0.0 for every interface (default: %(default)s; "
        "$HOST sets it)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=os.environ.get("PORT", "8080"),
        help="the port to listen on (default: %(default)s; $PORT sets it)",
    )
    parser.add_argument(
        "--workers",
        type=_at_least_one,
        default=os.environ.get(WORKERS_ENV, "1"),
        help=f"worker processes, at least 1 (default: %(default)s; ${WORKERS_ENV} sets it)",
    )
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default=os.environ.get("LOG_LEVEL", "info").lower(),
        help="the least severe level logged (default: %(default)s; $LOG_LEVEL sets it)",
    )
    return parser


def check_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} check",
        description="Validate a config without serving: exit 0 listing the models it serves "
        f"and those it leaves out (and why), or exit {BAD_CONFIG} naming every problem.",
    )
    _config_options(parser)
    return parser


def serve_command(args: argparse.Namespace) -> int:
    """Serve until a signal ends it; the exit status."""
    try:
        config, added = load_with_env_file(args.config, args.env_file, os.environ)
    except ConfigError as exc:
        print(f"vision-gateway: {exc}", file=sys.stderr)  # noqa: T201
        return BAD_CONFIG
    os.environ["GATEWAY_CONFIG"] = os.path.abspath(args.config)
    os.environ["LOG_LEVEL"] = args.log_level
    configure_logging(config.server.log_format, config.secrets(), args.log_level)
    if added:
        logger.info("read %s from %s", ", ".join(added), args.env_file or DEFAULT_ENV_FILE)
    if open_to_all(args.host) and not config.server.active_keys():
        logger.warning(
            "listening on %s with no gateway key: anyone who can reach this port can use every "
            "model, and spend the upstream keys this gateway holds; set server.api_keys "
            "(GATEWAY_API_KEY in the shipped config.yaml), or listen on 127.0.0.1",
            args.host,
        )
    try:
        return serve(
            config, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level
        )
    except ListenError as exc:
        logger.error("%s", exc)
        return exc.status


def run_command(argv: Sequence[str]) -> int:
    """Run the command `argv` names (serving, by default); the exit status."""
    release_large_buffers()
    if argv[:1] == ["check"]:
        return check(check_parser().parse_args(argv[1:]))
    return serve_command(serve_parser().parse_args(argv))
