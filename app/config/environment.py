"""A `.env` file read into the environment, as Docker Compose reads it for `config.yaml`."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

from dotenv import dotenv_values

from app.config import GatewayConfig, load_config
from app.config.loading import ConfigError

DEFAULT_ENV_FILE = ".env"


def read_env_file(
    path: str | Path, environ: MutableMapping[str, str], *, required: bool
) -> list[str]:
    """Set the variables `path` defines that `environ` lacks (what is already set wins, as in
    Compose); the names set. A missing file is an error only when `required`."""
    path = Path(path)
    if not path.exists():
        if required:
            raise ConfigError(f"cannot read env file {path}: no such file")
        return []
    try:
        values = dotenv_values(path, interpolate=True, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read env file {path}: {exc}") from None
    added = []
    for name, value in values.items():
        if name not in environ and value is not None:
            environ[name] = value
            added.append(name)
    return added


def load_with_env_file(
    config_path: str, env_file: str | None, environ: MutableMapping[str, str]
) -> tuple[GatewayConfig, list[str]]:
    """The config, read once `env_file` (by default `.env`, when there is one) has set what
    it defines in `environ`; the names it set."""
    added = read_env_file(env_file or DEFAULT_ENV_FILE, environ, required=env_file is not None)
    return load_config(config_path, environ), added
