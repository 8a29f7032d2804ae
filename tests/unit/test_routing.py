"""Routing: exact names, wildcard families, groups, fallbacks, and models left unserved."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import parse_config
from app.errors import InvalidRequest, ModelNotFound
from app.providers.aimlapi import AIMLAPI
from app.providers.base import ProviderContext
from app.providers.inspect import Inspect
from app.providers.openai_compat import OpenAICompatible
from app.service.routing import Attempt, Router
from tests.conftest import make_config


def router(models: list[dict[str, Any]], context: ProviderContext) -> Router:
    return Router(make_config(models), context)


def hosts(attempts: list[Attempt]) -> list[str | None]:
    return [attempt.deployment.entry.base_url for attempt in attempts]


def test_exact_name_resolves_to_its_deployment(provider_context: ProviderContext) -> None:
    routes = router([{"name": "gpt-4o", "provider": "aimlapi", "api_key": "k"}], provider_context)

    [attempt] = routes.resolve("gpt-4o")

    assert isinstance(attempt.deployment.provider, AIMLAPI)
    assert attempt.upstream_model == "gpt-4o"


def test_upstream_model_overrides_the_client_id(provider_context: ProviderContext) -> None:
    entry = {"name": "vision", "provider": "openai", "upstream_model": "Qwen/Qwen2-VL-7B"}

    [attempt] = router([entry], provider_context).resolve("vision")

    assert attempt.upstream_model == "Qwen/Qwen2-VL-7B"


def test_wildcard_routes_a_family_with_the_suffix_as_upstream_model(
    provider_context: ProviderContext,
) -> None:
    routes = router(
        [{"name": "aimlapi/*", "provider": "aimlapi", "api_key": "k"}], provider_context
    )

    [attempt] = routes.resolve("aimlapi/meta-llama/Llama-3.2-11B-Vision")

    assert attempt.upstream_model == "meta-llama/Llama-3.2-11B-Vision"


def test_wildcard_upstream_model_override_wins_over_the_suffix(
    provider_context: ProviderContext,
) -> None:
    entry = {"name": "local/*", "provider": "openai", "upstream_model": "served-model"}

    [attempt] = router([entry], provider_context).resolve("local/anything")

    assert attempt.upstream_model == "served-model"


@pytest.mark.parametrize("model", ["aimlapi/", "aimlapi", "other/gpt-4o", "gpt-4o-mini"])
def test_names_outside_every_route_are_not_found(
    model: str, provider_context: ProviderContext
) -> None:
    routes = router(
        [
            {"name": "aimlapi/*", "provider": "aimlapi", "api_key": "k"},
            {"name": "gpt-4o", "provider": "aimlapi", "api_key": "k"},
        ],
        provider_context,
    )

    with pytest.raises(ModelNotFound) as caught:
        routes.resolve(model)

    assert caught.value.param == "model"
    assert caught.value.code == "model_not_found"
    assert model in caught.value.message


def test_exact_name_beats_a_wildcard(provider_context: ProviderContext) -> None:
    routes = router(
        [
            {"name": "openai/*", "provider": "openai", "base_url": "http://wild"},
            {"name": "openai/gpt-4o", "provider": "openai", "base_url": "http://exact"},
        ],
        provider_context,
    )

    attempts = routes.resolve("openai/gpt-4o")

    assert hosts(attempts) == ["http://exact"]
    assert attempts[0].upstream_model == "openai/gpt-4o"


def test_longer_prefix_beats_a_shorter_one(provider_context: ProviderContext) -> None:
    routes = router(
        [
            {"name": "a/*", "provider": "openai", "base_url": "http://short"},
            {"name": "a/b/*", "provider": "openai", "base_url": "http://long"},
        ],
        provider_context,
    )

    [longer] = routes.resolve("a/b/c")
    [shorter] = routes.resolve("a/c")

    assert (longer.deployment.entry.base_url, longer.upstream_model) == ("http://long", "c")
    assert (shorter.deployment.entry.base_url, shorter.upstream_model) == ("http://short", "c")


def test_group_lists_every_entry_and_rotates_the_first(provider_context: ProviderContext) -> None:
    routes = router(
        [{"name": "m", "provider": "openai", "base_url": f"http://{host}"} for host in "abc"],
        provider_context,
    )

    orders = [hosts(routes.resolve("m")) for _ in range(4)]

    assert orders == [
        ["http://a", "http://b", "http://c"],
        ["http://b", "http://c", "http://a"],
        ["http://c", "http://a", "http://b"],
        ["http://a", "http://b", "http://c"],
    ]


def test_fallbacks_come_after_the_whole_group(provider_context: ProviderContext) -> None:
    routes = router(
        [
            {"name": "m", "provider": "openai", "base_url": "http://a", "fallbacks": ["backup"]},
            {"name": "m", "provider": "openai", "base_url": "http://b"},
            {"name": "backup", "provider": "openai", "base_url": "http://c"},
        ],
        provider_context,
    )

    attempts = routes.resolve("m")

    assert hosts(attempts) == ["http://a", "http://b", "http://c"]
    assert [a.upstream_model for a in attempts] == ["m", "m", "backup"]


def test_fallbacks_keep_their_order_and_skip_duplicates_self_and_unserved(
    provider_context: ProviderContext,
) -> None:
    routes = router(
        [
            {"name": "m", "provider": "openai", "base_url": "http://a", "fallbacks": ["y", "x"]},
            {"name": "m", "provider": "openai", "base_url": "http://b", "fallbacks": ["x", "m"]},
            {"name": "x", "provider": "openai", "base_url": "http://x"},
            {"name": "y", "provider": "openai", "base_url": "http://y"},
            {"name": "z", "provider": "aimlapi", "api_key": "${Z_KEY:-}"},
        ],
        provider_context,
    )

    assert hosts(routes.resolve("m")) == ["http://a", "http://b", "http://y", "http://x"]


def test_unserved_fallback_is_skipped(provider_context: ProviderContext) -> None:
    text = """\
models:
  - {name: m, provider: openai, base_url: "http://a", fallbacks: [z]}
  - {name: z, provider: aimlapi, api_key: "${Z_KEY:-}"}
"""
    routes = Router(parse_config(text, {}), provider_context)

    assert hosts(routes.resolve("m")) == ["http://a"]


def test_model_with_unset_key_variable_is_not_served_and_named(
    provider_context: ProviderContext,
) -> None:
    text = """\
models:
  - {name: gpt-4o, provider: aimlapi, api_key: "${AIMLAPI_API_KEY:-}"}
  - {name: inspect, provider: inspect}
"""
    routes = Router(parse_config(text, {}), provider_context)

    with pytest.raises(ModelNotFound, match="AIMLAPI_API_KEY") as caught:
        routes.resolve("gpt-4o")

    assert caught.value.status_code == 404
    assert [group.name for group in routes.served()] == ["inspect"]
    assert routes.owner("gpt-4o") is None


def test_model_with_its_key_set_is_served(provider_context: ProviderContext) -> None:
    text = 'models:\n  - {name: gpt-4o, provider: aimlapi, api_key: "${AIMLAPI_API_KEY:-}"}\n'
    routes = Router(parse_config(text, {"AIMLAPI_API_KEY": "sk"}), provider_context)

    assert len(routes.resolve("gpt-4o")) == 1
    assert routes.owner("gpt-4o") == "aimlapi"


def test_provider_that_needs_a_key_without_any_is_not_served(
    provider_context: ProviderContext,
) -> None:
    routes = router([{"name": "gpt-4o", "provider": "aimlapi"}], provider_context)

    with pytest.raises(ModelNotFound, match="api_key"):
        routes.resolve("gpt-4o")


def test_wildcard_with_unset_key_names_the_variable(provider_context: ProviderContext) -> None:
    text = 'models:\n  - {name: "aimlapi/*", provider: aimlapi, api_key: "${AIMLAPI_API_KEY:-}"}\n'
    routes = Router(parse_config(text, {}), provider_context)

    with pytest.raises(ModelNotFound, match="AIMLAPI_API_KEY"):
        routes.resolve("aimlapi/gpt-4o")


def test_group_serves_the_entries_that_have_their_key(provider_context: ProviderContext) -> None:
    text = """\
models:
  - {name: m, provider: aimlapi, base_url: "http://a", api_key: "${KEY_A:-}"}
  - {name: m, provider: aimlapi, base_url: "http://b", api_key: "${KEY_B:-}"}
"""
    routes = Router(parse_config(text, {"KEY_B": "sk"}), provider_context)

    assert hosts(routes.resolve("m")) == ["http://b"]


def test_openai_without_any_api_key_is_served(provider_context: ProviderContext) -> None:
    routes = router(
        [{"name": "local/*", "provider": "openai", "base_url": "http://localhost:8000/v1"}],
        provider_context,
    )

    [attempt] = routes.resolve("local/qwen")

    assert isinstance(attempt.deployment.provider, OpenAICompatible)
    assert routes.owner("local/qwen") == "openai"


def test_openai_with_an_empty_key_variable_is_not_served(
    provider_context: ProviderContext,
) -> None:
    text = 'models:\n  - {name: gpt-4o-mini, provider: openai, api_key: "${OPENAI_API_KEY:-}"}\n'
    routes = Router(parse_config(text, {}), provider_context)

    with pytest.raises(ModelNotFound, match="OPENAI_API_KEY"):
        routes.resolve("gpt-4o-mini")
    assert routes.served() == []


def test_inspect_needs_no_key(provider_context: ProviderContext) -> None:
    [attempt] = router([{"name": "inspect", "provider": "inspect"}], provider_context).resolve(
        "inspect"
    )

    assert isinstance(attempt.deployment.provider, Inspect)


def test_served_groups_keep_config_order(provider_context: ProviderContext) -> None:
    routes = router(
        [
            {"name": "b", "provider": "inspect"},
            {"name": "a/*", "provider": "openai"},
            {"name": "b", "provider": "inspect"},
        ],
        provider_context,
    )

    assert [(group.name, len(group.deployments)) for group in routes.served()] == [
        ("b", 2),
        ("a/*", 1),
    ]


@pytest.mark.parametrize(
    ("allowed", "model", "permitted"),
    [
        (["team/*"], "team/draft", True),
        (["team/*"], "team/secret", False),  # its own entry: not the family's route
        (["team/secret"], "team/secret", True),
        (["team/*", "team/secret"], "team/secret", True),
        (["vlm/*"], "vlm/doc", True),  # no such family: the pattern covers the names
        (["vlm/*"], "vlm/doc/invoice", True),
        (["vlm/doc"], "vlm/doc", True),
        (["vlm/doc"], "vlm/other", False),
        (["team/draft"], "team/draft", True),  # one member of a family, named
        (["team/draft"], "team/other", False),
        (["gpt-4o"], "team/draft", False),
    ],
)
def test_a_key_list_permits_by_the_route_a_name_takes(
    provider_context: ProviderContext, allowed: list[str], model: str, permitted: bool
) -> None:
    routes = router(
        [
            {"name": "team/*", "provider": "openai"},
            {"name": "team/secret", "provider": "openai"},
            {"name": "vlm/doc", "provider": "openai"},
            {"name": "vlm/doc/invoice", "provider": "openai"},
        ],
        provider_context,
    )

    assert routes.permits(allowed, model) is permitted


@pytest.mark.parametrize(
    "model",
    ["team/..", "team/../x", "team/./x", "team/x/..", "team/a\\b", "team/x\x00", "team/\x7f"],
)
def test_a_variant_with_dot_segments_or_control_characters_is_refused(
    provider_context: ProviderContext, model: str
) -> None:
    routes = router([{"name": "team/*", "provider": "openai"}], provider_context)

    with pytest.raises(InvalidRequest) as caught:
        routes.resolve(model)

    assert caught.value.param == "model"
    assert routes.owner(model) is None
    assert routes.resolve("team/x..y")[0].upstream_model == "x..y"  # dots within a name are fine
