"""`python -m app check`: a config validated without serving, and what it would serve."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from app.config import ConfigError
from app.config.environment import load_with_env_file
from app.providers.base import ProviderContext
from app.service.routing import Router
from app.state import MemoryState
from app.transport import AiohttpTransport

BAD_CONFIG = 2


def check(args: argparse.Namespace) -> int:
    """Exit 0 listing the model names served and those left out (and what would serve
    them), or `BAD_CONFIG` with every problem, as a start would report them."""
    # Building the routes logs what the report below says better.
    logging.getLogger().addHandler(logging.NullHandler())
    logging.getLogger().setLevel(logging.ERROR)
    try:
        config, _ = load_with_env_file(args.config, args.env_file, os.environ)
        # Built as a start builds them: bad provider options and fallbacks are found too.
        router = Router(config, ProviderContext(AiohttpTransport(), config.images, MemoryState()))
    except ConfigError as exc:
        print(f"vision-gateway: {exc}", file=sys.stderr)  # noqa: T201
        return BAD_CONFIG
    groups = router.groups()
    served = [group for group in groups if group.deployments]
    left_out = [group for group in groups if not group.deployments]
    width = max((len(group.name) for group in groups), default=0) + 2
    lines = [f"{args.config}: valid; {len(served)} of {len(groups)} model names served"]
    if served:
        lines += ["", "served:"]
        lines += [f"  {group.name:<{width}}{group.members()}" for group in served]
    if left_out:
        lines += ["", "not served:"]
        for group in left_out:
            variables = " or ".join(group.missing_variables)
            lines.append(f"  {group.name:<{width}}{group.members()}: set {variables} to serve it")
    print("\n".join(lines))  # noqa: T201
    return 0
