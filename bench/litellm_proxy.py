"""The LiteLLM proxy as a point of comparison: installed on demand into a venv of its own (never
one of the gateway's dependencies), configured to send the bench's models to the mock upstream,
and started like the gateway, on a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import orjson

from bench.procs import HOST, Service, free_port, launch

VERSION = "1.102.4"
PACKAGE = f"litellm[proxy]=={VERSION}"
# Outside the repository, so that no tool that walks the tree finds a few hundred MB of it.
_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
VENV = Path(
    os.environ.get("BENCH_LITELLM_VENV") or _CACHE / "vision-gateway-bench" / f"litellm-{VERSION}"
)
START_TIMEOUT_S = 120.0  # it imports a great deal before it listens
INSTALL_TIMEOUT_S = 1800.0
UPSTREAM_KEY = "bench-upstream-key"  # the mock checks no key; LiteLLM wants one

# No telemetry, no cost map from the network, no debug logging, no database: the proxy as a
# user would run it in production with its defaults otherwise.
ENVIRONMENT = {
    "LITELLM_LOG": "ERROR",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_MODE": "PRODUCTION",
}
# uvicorn's access log off, as it is in the gateway: one line per request costs CPU.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def installed_version(venv: Path = VENV) -> str | None:
    """The LiteLLM version in the bench's venv, or None when there is none."""
    python = _venv_python(venv)
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return done.stdout.strip() or None if done.returncode == 0 else None


def ensure_installed(venv: Path = VENV) -> float | None:
    """Install the pinned LiteLLM proxy into `venv` unless it is there already. Returns the
    seconds the install took, or None when the venv was ready."""
    if installed_version(venv) == VERSION:
        return None
    print(f"installing {PACKAGE} into {venv} (once; a minute or more) ...", flush=True)
    started = time.monotonic()
    if not _venv_python(venv).exists():
        base = getattr(sys, "_base_executable", sys.executable)
        _run([base, "-m", "venv", str(venv)], "creating the venv")
    python = str(_venv_python(venv))
    _run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], "upgrading pip")
    _run([python, "-m", "pip", "install", "--quiet", PACKAGE], f"pip install {PACKAGE}")
    if installed_version(venv) != VERSION:
        raise RuntimeError(f"LiteLLM {VERSION} is not importable in {venv} after installing it")
    took = time.monotonic() - started
    print(f"installed LiteLLM {VERSION} in {took:.0f} s", flush=True)
    return took


def _run(args: list[str], what: str) -> None:
    print(f"  {what} ...", flush=True)
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, check=False, timeout=INSTALL_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{what} took over {INSTALL_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{tail}")


def proxy_config(
    mock_port: int, models: Iterable[str], upstream_model: dict[str, str]
) -> dict[str, object]:
    """A LiteLLM config routing each bench model name to the mock's OpenAI-compatible API."""
    base = f"http://{HOST}:{mock_port}/v1"
    return {
        "model_list": [
            {
                "model_name": name,
                "litellm_params": {
                    "model": f"openai/{upstream_model[name]}",
                    "api_base": base,
                    "api_key": UPSTREAM_KEY,
                },
            }
            for name in models
        ],
        "litellm_settings": {"telemetry": False, "turn_off_message_logging": True},
        "general_settings": {"disable_spend_logs": True},
    }


def write_config(folder: Path, mock_port: int, upstream_model: dict[str, str]) -> Path:
    """The proxy's config (JSON, which is YAML too) and its logging config, in `folder`.
    `upstream_model` maps each model name the bench asks for to the mock's name for it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "litellm-logging.json").write_bytes(orjson.dumps(LOG_CONFIG))
    path = folder / "litellm.yaml"
    config = proxy_config(mock_port, sorted(upstream_model), upstream_model)
    path.write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))
    return path


async def start_litellm(root: Path, config: Path, log: Path, workers: int = 1) -> Service:
    """`litellm --config ... --num_workers N` on a free port, once its liveness probe answers."""
    port = free_port()
    args = [
        str(VENV / "bin" / "litellm"),
        "--config",
        str(config),
        "--host",
        HOST,
        "--port",
        str(port),
        "--num_workers",
        str(workers),
        "--log_config",
        str(config.parent / "litellm-logging.json"),
    ]
    env = {**os.environ, **ENVIRONMENT}
    return await launch(
        "LiteLLM proxy",
        args,
        port,
        root,
        log,
        workers=workers,
        env=env,
        health_path="/health/liveliness",
        start_timeout_s=START_TIMEOUT_S,
    )
