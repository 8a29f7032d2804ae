"""The configurations shipped with the gateway load, and serve what they promise keyless."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_config_yaml_loads_with_no_key_set() -> None:
    config = load_config(ROOT / "config.yaml", environ={})

    providers = {entry.provider for entry in config.models}
    assert {
        "inspect",
        "openai",
        "aimlapi",
        "predictionguard",
        "masterpiecex",
        "vlmrun",
    } <= providers
    assert all(entry.api_key == "" for entry in config.models)


def test_kubernetes_config_map_holds_a_valid_config_on_redis() -> None:
    manifest = yaml.safe_load((ROOT / "deploy/kubernetes/configmap.yaml").read_text())

    config = parse_config(manifest["data"]["config.yaml"], environ={"AIMLAPI_API_KEY": "k"})

    assert config.state.backend == "redis"
    assert any(entry.api_key == "k" for entry in config.models)
