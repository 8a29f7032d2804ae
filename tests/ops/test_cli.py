"""The command line as an operator meets it: `check`, `--version`, `--help`, refusals, `.env`,
Ctrl+C, a busy port, and what a start says about who can reach the gateway."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app import __version__
from tests.ops.configs import gateway_config
from tests.processes import HOST, REPO_ROOT, Gateways, free_port

pytestmark = pytest.mark.e2e

# Checked configs name these variables; the test's own environment must not set them.
KEY_VARIABLES = ("CLI_TEST_AIMLAPI_KEY", "CLI_TEST_OPENAI_KEY", "CLI_TEST_GATEWAY_KEY")
CHECKED = {
    "models": [
        {"name": "inspect", "provider": "inspect"},
        {"name": "vision", "provider": "aimlapi", "api_key": "$CLI_TEST_AIMLAPI_KEY"},
        {
            "name": "vision",
            "provider": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key": "${CLI_TEST_OPENAI_KEY:-}",
        },
        {"name": "spare/*", "provider": "openai", "api_key": "${CLI_TEST_OPENAI_KEY:-}"},
    ]
}


def run_app(*args: str, cwd: Path = REPO_ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m app ARGS` to its end, from `cwd` (the app found on PYTHONPATH)."""
    environ = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    environ.pop("GATEWAY_CONFIG", None)
    environ.update(env, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_config(folder: Path, tree: dict[str, Any], name: str = "gateway.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def test_check_lists_the_models_served_and_those_left_out_with_the_reason(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, CHECKED)

    done = run_app("check", "--config", str(config), CLI_TEST_AIMLAPI_KEY="sk-a")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{config}: valid; 2 of 3 model names served"
    served = lines[lines.index("served:") + 1 : lines.index("not served:") - 1]
    assert [line.split()[0] for line in served] == ["inspect", "vision"]
    assert "aimlapi; openai at http://127.0.0.1:9/v1" in served[1]
    [left_out] = lines[lines.index("not served:") + 1 :]
    assert left_out.split()[0] == "spare/*"
    assert left_out.endswith("openai: set CLI_TEST_OPENAI_KEY to serve it")


def test_check_reports_every_problem_with_file_line_and_field(tmp_path: Path) -> None:
    tree = {
        "server": {"max_request_bytez": 1},
        "models": [
            {"name": "a", "provider": "nope"},
            {"name": "b", "provider": "openai", "timeout_s": "soon"},
        ],
    }
    config = write_config(tmp_path, tree)

    done = run_app("check", "--config", str(config))

    assert done.returncode == 2
    assert done.stdout == ""
    assert f"{config}:2: unknown key 'server.max_request_bytez'" in done.stderr
    assert f"{config}:5: models.0.provider: Input should be" in done.stderr
    assert f"{config}:8: models.1.timeout_s: Input should be a valid number" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_names_a_variable_written_without_braces_that_is_unset(tmp_path: Path) -> None:
    config = write_config(tmp_path, CHECKED)

    done = run_app("check", "--config", str(config))

    assert done.returncode == 2
    assert re.search(
        rf"{re.escape(str(config))}:\d+: models\.1\.api_key: environment variable "
        r"CLI_TEST_AIMLAPI_KEY is not set \(used as \$CLI_TEST_AIMLAPI_KEY\)",
        done.stderr,
    ), done.stderr


def test_check_reads_the_env_file_of_the_working_folder_or_the_one_named(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, CHECKED)
    (tmp_path / ".env").write_text("CLI_TEST_AIMLAPI_KEY=sk-from-dotenv\n")
    (tmp_path / "other.env").write_text(
        "export CLI_TEST_AIMLAPI_KEY='sk-a'\nCLI_TEST_OPENAI_KEY=sk-o # comment\n"
    )

    from_folder = run_app("check", "--config", str(config), cwd=tmp_path)
    named = run_app("check", "--config", str(config), "--env-file", "other.env", cwd=tmp_path)
    missing = run_app("check", "--config", str(config), "--env-file", "nowhere.env", cwd=tmp_path)

    assert from_folder.returncode == 0, from_folder.stderr
    assert "2 of 3 model names served" in from_folder.stdout
    assert named.returncode == 0, named.stderr
    assert "3 of 3 model names served" in named.stdout
    assert missing.returncode == 2
    assert "cannot read env file nowhere.env" in missing.stderr


def test_the_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    tree = {"models": [{"name": "m", "provider": "openai", "base_url": "$CLI_TEST_URL"}]}
    config = write_config(tmp_path, tree)
    (tmp_path / ".env").write_text("CLI_TEST_URL=http://from-dotenv.test/v1\n")

    done = run_app("check", "--config", str(config), cwd=tmp_path, CLI_TEST_URL="http://env.test")

    assert done.returncode == 0, done.stderr
    assert "openai at http://env.test" in done.stdout


def test_version_is_the_package_version() -> None:
    done = run_app("--version")
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())

    assert done.returncode == 0
    assert done.stdout.strip() == f"vision-gateway {__version__}"
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "app.__version__"}


def test_help_describes_every_option_with_its_default_and_the_check_command() -> None:
    done = run_app("--help")
    check_help = run_app("check", "--help")

    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # argparse wraps lines anywhere
    options = re.findall(r"^  (--[a-z-]+)", done.stdout, re.MULTILINE)
    assert options == [
        "--version",
        "--config",
        "--env-file",
        "--host",
        "--port",
        "--workers",
        "--log-level",
    ]
    for option, default in [
        ("--config", "config.yaml"),
        ("--env-file", ".env"),
        ("--host", "127.0.0.1"),
        ("--port", "8080"),
        ("--workers", "1"),
        ("--log-level", "info"),
    ]:
        described = text.split(f" {option} ", 1)[1].split(" --", 1)[0]
        assert f"(default: {default}" in described, option
    assert "check validate a config without serving" in text
    assert check_help.returncode == 0
    assert "--config" in check_help.stdout
    assert "--env-file" in check_help.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--workers", "0"), "argument --workers: must be at least 1, not 0"),
        (("--port", "70000"), "argument --port: 70000 is not a port"),
        (("--log-level", "loud"), "argument --log-level: invalid choice: 'loud'"),
    ],
)
def test_impossible_options_are_refused_before_anything_starts(
    args: tuple[str, ...], message: str
) -> None:
    done = run_app(*args)

    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_in_use_is_refused_naming_the_address(tmp_path: Path) -> None:
    config = write_config(tmp_path, gateway_config())
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]

        done = run_app("--config", str(config), "--env-file", os.devnull, "--port", str(port))

    assert done.returncode == 3
    assert f"cannot listen on {HOST}:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def _interruptible() -> None:
    # As from a terminal: a test run started in the background has Ctrl+C ignored, and its
    # children would inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def launched(config: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """`python -m app` serving `config`; killed at the end if it is still running."""
    environ = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    command = [sys.executable, "-m", "app", "--config", str(config), "--env-file", os.devnull]
    process = subprocess.Popen(
        [*command, *args],
        cwd=REPO_ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl+C reaches a terminal's whole foreground group
        preexec_fn=_interruptible,
    )
    with process:
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()


def wait_until_serving(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"the gateway did not start: {process.poll()}")


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("when", ["while loading", "while serving"])
def test_ctrl_c_exits_cleanly_without_a_traceback(tmp_path: Path, workers: int, when: str) -> None:
    config = write_config(tmp_path, gateway_config())
    port = free_port()
    with launched(config, "--port", str(port), "--workers", str(workers)) as process:
        if when == "while serving":
            wait_until_serving(port, process)
        else:
            time.sleep(0.3)

        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=30)

    # 130: interrupted; 0: a supervisor's workers drained; -SIGINT: ended before Python
    # itself had started.
    assert process.returncode in (0, 130, -signal.SIGINT), output
    assert "Traceback" not in output
    assert "KeyboardInterrupt" not in output


def start_line_records(gateways: Gateways, tree: dict[str, Any], **options: Any) -> list[str]:
    gateway = gateways.start(tree, **options)
    return [record["message"] for record in gateway.log_records() if record["level"] != "debug"]


def warnings_of(gateways: Gateways, tree: dict[str, Any], **options: Any) -> list[str]:
    gateway = gateways.start(tree, **options)
    return [record["message"] for record in gateway.log_records() if record["level"] == "warning"]


def test_a_start_beyond_loopback_without_a_key_warns_naming_the_fix(gateways: Gateways) -> None:
    [warning] = warnings_of(gateways, gateway_config(), listen="0.0.0.0")

    assert warning.startswith("listening on 0.0.0.0 with no gateway key")
    assert "anyone who can reach this port can use every model" in warning
    assert "set server.api_keys" in warning


@pytest.mark.parametrize(
    ("listen", "server"),
    [
        pytest.param("127.0.0.1", {}, id="loopback without a key"),
        pytest.param("0.0.0.0", {"api_keys": ["gw-cli-test-key"]}, id="everywhere with a key"),
    ],
)
def test_a_start_on_loopback_or_with_a_key_does_not_warn(
    gateways: Gateways, listen: str, server: dict[str, Any]
) -> None:
    assert warnings_of(gateways, gateway_config(server=server), listen=listen) == []


def test_a_start_reads_the_env_file_and_logs_the_groups_with_their_members(
    gateways: Gateways,
) -> None:
    tree = gateway_config(CHECKED["models"])
    env_file = "CLI_TEST_AIMLAPI_KEY=sk-a\nCLI_TEST_OPENAI_KEY=sk-o\n"

    messages = start_line_records(gateways, tree, env_file=env_file)

    assert any(
        m.startswith("read CLI_TEST_AIMLAPI_KEY, CLI_TEST_OPENAI_KEY from ") for m in messages
    )
    assert (
        "model 'vision' is a group of 2 entries that share its requests and fail over in turn: "
        "aimlapi; openai at http://127.0.0.1:9/v1"
    ) in messages
    assert any(m == f"listening on http://{HOST}:{gateways.started[0].port}" for m in messages)


def test_make_help_lists_the_targets_and_make_run_listens_on_loopback(tmp_path: Path) -> None:
    venv = Path(sys.executable).parent.parent
    # The environment is the one running these tests: make must not install into it.
    make = ["make", "--no-print-directory", f"VENV={venv}", "-o", f"{venv}/.installed"]
    listed = subprocess.run(
        [*make, "help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    config = write_config(tmp_path, gateway_config())
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k not in ("HOST", "GATEWAY_CONFIG")}

    served = subprocess.Popen(
        [*make, "run", f"CONFIG={config}", f"PORT={port}"],
        cwd=REPO_ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until_serving(port, served)
    finally:
        os.killpg(served.pid, signal.SIGTERM)
        output, _ = served.communicate(timeout=30)

    targets = re.findall(r"^  ([a-z-]+) ", listed.stdout, re.MULTILINE)
    assert {"help", "run", "check", "test", "lint", "bench", "lock", "clean"} <= set(targets)
    assert "HOST=127.0.0.1" in listed.stdout
    assert f"--host 127.0.0.1 --port {port}" in output
    assert f"listening on http://127.0.0.1:{port}" in output
    assert "with no gateway key" not in output
