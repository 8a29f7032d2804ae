"""`deploy/kubernetes/`: valid for the Kubernetes API offline, and its parts fit together: the
probes, the Service, the autoscaler, the config on the shared Redis and the keys' Secret."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from app.config import parse_config
from tests.deploy.podman import REPO_ROOT
from tests.deploy.tools import run_tool

MANIFESTS = REPO_ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = MANIFESTS / "kustomization.yaml"
# The oldest release the manifests promise to work on, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
IMAGE_UID = 10001  # the Dockerfile's USER


def resource_files() -> list[Path]:
    return sorted(path for path in MANIFESTS.glob("*.yaml") if path != KUSTOMIZATION)


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    """Every resource, by (kind, name)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in resource_files():
        for document in yaml.safe_load_all(path.read_text()):
            key = (document["kind"], document["metadata"]["name"])
            assert key not in found, f"{key} is defined twice"
            found[key] = document
    return found


def gateway_container(manifests: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    pod = manifests["Deployment", "vision-gateway"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    container_spec: dict[str, Any] = container
    return container_spec


def shipped_config_text(manifests: dict[tuple[str, str], dict[str, Any]]) -> str:
    text: str = manifests["ConfigMap", "vision-gateway-config"]["data"]["config.yaml"]
    return text


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_strictly_against_the_kubernetes_schema(version: str) -> None:
    # The schemas ship with kubernetes-validate: no cluster and no network needed.
    files = [str(path.relative_to(REPO_ROOT)) for path in resource_files()]
    command = [sys.executable, "-m", "kubernetes_validate", "--strict", "--kubernetes-version"]

    result = run_tool(*command, version, *files)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Couldn't find schema" not in result.stdout + result.stderr


def test_the_kustomization_applies_every_manifest() -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())

    assert sorted(kustomization["resources"]) == [path.name for path in resource_files()]


def test_the_gateway_is_probed_on_health_and_ready_and_served_by_a_service() -> None:
    manifests = resources()
    deployment = manifests["Deployment", "vision-gateway"]
    container = gateway_container(manifests)
    service = manifests["Service", "vision-gateway"]

    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert {"name": "http", "containerPort": 8080} in container["ports"]
    assert {"name": "PORT", "value": "8080"} in container["env"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]


def test_the_autoscaler_owns_the_gateway_replicas() -> None:
    manifests = resources()
    autoscaler = manifests["HorizontalPodAutoscaler", "vision-gateway"]["spec"]

    assert autoscaler["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "vision-gateway",
    }
    assert 2 <= autoscaler["minReplicas"] < autoscaler["maxReplicas"]
    # A `replicas` here would reset the autoscaler's choice on every apply.
    assert "replicas" not in manifests["Deployment", "vision-gateway"]["spec"]


def test_the_pods_run_as_the_image_user_and_mount_the_config_and_keys() -> None:
    manifests = resources()
    pod = manifests["Deployment", "vision-gateway"]["spec"]["template"]["spec"]
    container = gateway_container(manifests)

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == IMAGE_UID
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/app/config.yaml"]["subPath"] == "config.yaml"
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    config_map = volumes[mounts["/app/config.yaml"]["name"]]["configMap"]["name"]
    assert ("ConfigMap", config_map) in manifests
    (keys,) = container["envFrom"]
    assert ("Secret", keys["secretRef"]["name"]) in manifests
    # A read-only root needs a writable /tmp for the workers' metrics files.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "/tmp" in mounts


def test_termination_waits_for_the_pre_stop_pause_and_the_drain() -> None:
    manifests = resources()
    pod = manifests["Deployment", "vision-gateway"]["spec"]["template"]["spec"]
    pause = gateway_container(manifests)["lifecycle"]["preStop"]["exec"]["command"]
    config = parse_config(shipped_config_text(manifests), environ={})

    assert pause[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pause[1]) + config.server.shutdown_grace_s


def test_the_config_shares_state_in_the_redis_service() -> None:
    manifests = resources()
    config = parse_config(shipped_config_text(manifests), environ={})
    redis_url = urlsplit(config.state.url)
    redis_service = manifests["Service", redis_url.hostname or ""]
    redis_pods = manifests["Deployment", "redis"]["spec"]["template"]["metadata"]["labels"]

    assert config.state.backend == "redis"
    assert redis_url.port in [port["port"] for port in redis_service["spec"]["ports"]]
    assert redis_service["spec"]["selector"].items() <= redis_pods.items()


def test_the_secret_holds_every_variable_the_config_reads() -> None:
    manifests = resources()
    variables = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", shipped_config_text(manifests)))
    secret = manifests["Secret", "vision-gateway-keys"]

    assert variables
    assert variables <= set(secret["stringData"])
