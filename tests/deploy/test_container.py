"""The image as users run it: built from the Dockerfile, serving a mounted config on `$PORT`,
answering through an upstream on the host, as a non-root user, and stopping gracefully."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.deploy.podman import Container, Podman, unique_name
from tests.e2e.deployments import png_data_uri
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.e2e.servers import serving
from tests.processes import free_port

# The first test to use the image also waits for its build.
pytestmark = pytest.mark.timeout(900)

GATEWAY_KEY = "gw-key-in-container"
UPSTREAM_KEY = "sk-upstream-in-container"
STOP_GRACE_S = 20


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    """The OpenAI-compatible fake on the host's loopback, which host networking lets the
    container reach."""
    with serving(FakeUpstream("openai")) as fake:
        yield fake


def write_config(directory: Path, upstream: FakeUpstream) -> Path:
    """A config naming its keys by variable, as the shipped one does."""
    entry: dict[str, Any] = {
        "provider": "openai",
        "base_url": upstream.base_url,
        "api_key": "${UPSTREAM_API_KEY}",
    }
    config = {
        "server": {"api_keys": ["${GATEWAY_API_KEY}"], "shutdown_grace_s": 10},
        "models": [
            {"name": "fake-vision", "upstream_model": "fake-upstream-model", **entry},
            {"name": "slow-vision", "upstream_model": "slow-upstream-model", **entry},
        ],
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o644)  # read by the container's own user
    return path


@contextmanager
def running(podman: Podman, image: str, config: Path, *, workers: int) -> Iterator[Container]:
    """The image with `config` mounted over /app/config.yaml and the keys in its environment,
    on a read-only root filesystem as the Kubernetes manifests run it; always removed."""
    port = free_port()
    container = Container(podman, unique_name("vision-gateway-test"), port)
    try:
        podman.run(
            *("run", "--detach", "--name", container.name, "--network", "host", "--read-only"),
            *("--env", f"PORT={port}", "--env", f"GATEWAY_WORKERS={workers}"),
            *("--env", f"GATEWAY_API_KEY={GATEWAY_KEY}"),
            *("--env", f"UPSTREAM_API_KEY={UPSTREAM_KEY}"),
            *("--volume", f"{config}:/app/config.yaml:ro", image),
        )
        container.wait_healthy()
        yield container
    finally:
        container.remove()


@pytest.fixture(scope="module")
def container(
    podman: Podman,
    image: str,
    upstream: FakeUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Container]:
    """The image serving with two workers for the module's checks."""
    config = write_config(tmp_path_factory.mktemp("container"), upstream)
    with running(podman, image, config, workers=2) as started:
        yield started


def ask(container: Container, model: str) -> str | None:
    with openai.OpenAI(
        base_url=f"{container.url}/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=30
    ) as client:
        completion = client.chat.completions.create(
            model=model,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": png_data_uri(4, 3)}},
                    ],
                }
            ],
        )
    return completion.choices[0].message.content


def test_a_completion_goes_through_the_upstream_named_in_the_mounted_config(
    container: Container, upstream: FakeUpstream
) -> None:
    upstream.reset()

    answer = ask(container, "fake-vision")

    assert answer == Reply().text
    (received,) = upstream.received
    assert received.model == "fake-upstream-model"
    assert received.api_key == UPSTREAM_KEY


def test_the_server_is_pid_1_and_not_root(container: Container) -> None:
    # PID 1 receives the engine's SIGTERM: the server itself, not a shell in front of it.
    command = container.exec("cat", "/proc/1/cmdline").split("\0")
    uid = container.exec("id", "-u").strip()

    assert command[:3] == ["python", "-m", "app"]
    assert uid.isdigit()
    assert int(uid) != 0


def test_the_image_healthcheck_passes(container: Container) -> None:
    healthcheck = container.inspect("{{json .Config.Healthcheck.Test}}")

    assert "/health" in healthcheck
    assert container.podman.run("healthcheck", "run", container.name).returncode == 0


def test_stop_lets_the_request_in_flight_finish_then_exits_cleanly(
    podman: Podman, image: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.reset()
    upstream.script("slow-upstream-model", Reply(text="Finished while stopping.", delay_s=2))
    config = write_config(tmp_path, upstream)
    with running(podman, image, config, workers=1) as container, ThreadPoolExecutor(1) as pool:
        answer = pool.submit(ask, container, "slow-vision")
        deadline = time.monotonic() + 10
        while not upstream.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert upstream.received, "the request never reached the upstream"

        started = time.monotonic()
        podman.run("stop", "--time", str(STOP_GRACE_S), container.name)
        stopped_after = time.monotonic() - started

        assert answer.result(timeout=30) == "Finished while stopping."
        assert stopped_after < STOP_GRACE_S, "the server ignored SIGTERM and was killed"
        assert container.inspect("{{.State.ExitCode}}") == "0", container.logs()[-4000:]
        assert "Application shutdown complete" in container.logs()
