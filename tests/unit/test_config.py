"""Config loading: `${VAR}` substitution, strict keys reported with their line, defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.config import (
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_TIMEOUT_S,
    ApiKey,
    ConfigError,
    load_config,
    parse_config,
)
from app.providers import PROVIDER_KINDS
from app.providers.base import ProviderContext
from app.service.routing import Router
from tests.conftest import make_config

ONE_MODEL = """\
models:
  - name: m
    provider: openai
"""


def test_variable_is_substituted_from_the_environment() -> None:
    text = ONE_MODEL + "    api_key: ${UPSTREAM_KEY}\n"

    config = parse_config(text, {"UPSTREAM_KEY": "sk-live"})

    assert config.models[0].api_key == "sk-live"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, "http://localhost:8000/v1"), ({"BASE": "http://gpu:9000/v1"}, "http://gpu:9000/v1")],
)
def test_default_applies_only_when_the_variable_is_unset(
    environ: dict[str, str], expected: str
) -> None:
    text = ONE_MODEL + "    base_url: ${BASE:-http://localhost:8000/v1}\n"

    assert parse_config(text, environ).models[0].base_url == expected


def test_empty_default_gives_an_empty_string() -> None:
    text = ONE_MODEL + "    api_key: ${UPSTREAM_KEY:-}\n"

    assert parse_config(text, {}).models[0].api_key == ""


def test_variable_set_to_empty_takes_the_default_as_in_the_shell() -> None:
    text = ONE_MODEL + "    upstream_model: ${UPSTREAM:-fallback}\n"

    assert parse_config(text, {"UPSTREAM": ""}).models[0].upstream_model == "fallback"


def test_variable_set_to_empty_without_default_is_empty() -> None:
    text = ONE_MODEL + "    api_key: ${UPSTREAM_KEY}\n"

    assert parse_config(text, {"UPSTREAM_KEY": ""}).models[0].api_key == ""


def test_several_variables_inside_one_string() -> None:
    text = ONE_MODEL + "    base_url: http://${HOST}:${PORT:-8000}/v1\n"

    assert parse_config(text, {"HOST": "gpu-1"}).models[0].base_url == "http://gpu-1:8000/v1"


def test_substitution_reaches_lists_and_nested_maps() -> None:
    text = """\
server:
  api_keys:
    - "${PLAIN_KEY}"
    - key: ${TEAM_KEY}
      name: team-${TEAM:-a}
      models: ["${TEAM_MODEL}", "vlmrun/*"]
models:
  - name: m
    provider: openai
    options:
      nested: {deeper: ["${DEEP}"]}
    fallbacks: ["${FALLBACK:-other}"]
"""
    environ = {"PLAIN_KEY": "k1", "TEAM_KEY": "k2", "TEAM_MODEL": "gpt-4o", "DEEP": "d"}

    config = parse_config(text, environ)

    assert config.server.api_keys == [
        "k1",
        ApiKey(key="k2", name="team-a", models=["gpt-4o", "vlmrun/*"]),
    ]
    assert config.models[0].options == {"nested": {"deeper": ["d"]}}
    assert config.models[0].fallbacks == ["other"]


def test_numeric_and_boolean_fields_can_come_from_variables() -> None:
    text = """\
server:
  max_request_bytes: ${MAX_BYTES}
images:
  max_images_per_request: ${MAX_IMAGES:-4}
  fetch_timeout_s: ${FETCH_TIMEOUT}
  allow_private_networks: ${PRIVATE}
models:
  - name: m
    provider: openai
    timeout_s: ${TIMEOUT}
"""
    environ = {"MAX_BYTES": "1024", "FETCH_TIMEOUT": "2.5", "PRIVATE": "true", "TIMEOUT": "30"}

    config = parse_config(text, environ)

    assert config.server.max_request_bytes == 1024
    assert config.images.max_images_per_request == 4
    assert config.images.fetch_timeout_s == 2.5
    assert config.images.allow_private_networks is True
    assert config.models[0].timeout_s == 30.0


def test_non_numeric_value_from_a_variable_is_a_type_error() -> None:
    text = ONE_MODEL + "    timeout_s: ${TIMEOUT}\n"

    with pytest.raises(ConfigError, match="timeout_s"):
        parse_config(text, {"TIMEOUT": "soon"})


def test_missing_variable_without_default_names_the_variable() -> None:
    text = ONE_MODEL + "    api_key: ${UPSTREAM_KEY}\n"

    with pytest.raises(ConfigError, match="UPSTREAM_KEY"):
        parse_config(text, {})


def test_missing_variable_inside_a_list_names_the_variable() -> None:
    text = 'server:\n  api_keys: ["${GATEWAY_KEY}"]\n' + ONE_MODEL

    with pytest.raises(ConfigError, match="GATEWAY_KEY"):
        parse_config(text, {})


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param("$UPSTREAM_KEY", "sk-live", id="alone"),
        pytest.param("Bearer-$UPSTREAM_KEY", "Bearer-sk-live", id="inside text"),
        pytest.param("$UPSTREAM_KEY.suffix", "sk-live.suffix", id="up to a non-name character"),
        pytest.param("cost$$5", "cost$5", id="$$ is a dollar"),
        pytest.param("$$UPSTREAM_KEY", "$UPSTREAM_KEY", id="$$ before a name"),
        pytest.param("5 $", "5 $", id="a lone dollar"),
    ],
)
def test_a_variable_without_braces_is_substituted_as_compose_does(
    written: str, expected: str
) -> None:
    text = ONE_MODEL + f"    api_key: '{written}'\n"

    assert parse_config(text, {"UPSTREAM_KEY": "sk-live"}).models[0].api_key == expected


def test_a_missing_variable_without_braces_names_it_its_field_and_line() -> None:
    text = ONE_MODEL + "    api_key: $MY_KEY\n"

    with pytest.raises(ConfigError) as raised:
        parse_config(text, {}, source="gw.yaml")

    assert "gw.yaml:4: models.0.api_key: environment variable MY_KEY is not set" in str(
        raised.value
    )
    assert "(used as $MY_KEY)" in str(raised.value)


def test_every_missing_variable_is_reported_at_once() -> None:
    text = 'server:\n  api_keys: ["${GATEWAY_KEY}"]\n' + ONE_MODEL + "    api_key: $KEY_B\n"

    with pytest.raises(ConfigError) as raised:
        parse_config(text, {}, source="gw.yaml")

    message = str(raised.value)
    assert "gw.yaml:2: server.api_keys.0: environment variable GATEWAY_KEY" in message
    assert "gw.yaml:6: models.0.api_key: environment variable KEY_B" in message


@pytest.mark.parametrize("written", ["${MY KEY}", "${1ABC}", "${KEY:?needed}", "${KEY"])
def test_a_malformed_reference_is_refused_never_sent_as_text(written: str) -> None:
    text = ONE_MODEL + f"    api_key: '{written}'\n"

    with pytest.raises(ConfigError, match="is not a variable reference"):
        parse_config(text, {"KEY": "sk", "MY": "x", "1ABC": "y"})


def test_api_key_variables_written_without_braces_are_recorded() -> None:
    text = ONE_MODEL + "    api_key: $UPSTREAM_KEY\n"

    entry = parse_config(text, {"UPSTREAM_KEY": ""}).models[0]

    assert entry.api_key_variables == ("UPSTREAM_KEY",)


@pytest.mark.parametrize(
    ("written", "origin"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("http://localhost:5173/", "http://localhost:5173"),
        ("HTTPS://App.Example.com", "https://app.example.com"),
        ("*", "*"),
    ],
)
def test_cors_origins_are_kept_as_browsers_send_them(written: str, origin: str) -> None:
    config = make_config(server={"cors": [written]})

    assert config.server.cors == [origin]


@pytest.mark.parametrize("written", ["app.example.com", "https://app.example.com/path", "ftp://x"])
def test_a_cors_entry_that_is_no_origin_is_refused(written: str) -> None:
    with pytest.raises(ConfigError, match="is not an origin"):
        make_config(server={"cors": [written]})


def test_trusted_proxies_are_addresses_or_networks() -> None:
    config = make_config(server={"trusted_proxies": ["10.0.0.0/8", "127.0.0.1", "::1"]})

    assert [str(network) for network in config.server.trusted_proxies] == [
        "10.0.0.0/8",
        "127.0.0.1/32",
        "::1/128",
    ]
    with pytest.raises(ConfigError, match="trusted_proxies"):
        make_config(server={"trusted_proxies": ["proxy.internal"]})


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        pytest.param(ONE_MODEL + "colour: blue\n", "colour", 4, id="top level"),
        pytest.param("server:\n  playgrond: false\n" + ONE_MODEL, "playgrond", 2, id="server"),
        pytest.param("images:\n  max_images: 3\n" + ONE_MODEL, "max_images", 2, id="images"),
        pytest.param("state:\n  backend: memory\n  host: x\n" + ONE_MODEL, "host", 3, id="state"),
        pytest.param(ONE_MODEL + "    timeout: 5\n", "timeout", 4, id="model entry"),
        pytest.param(
            ONE_MODEL + "  - name: n\n    provider: inspect\n    upstream: x\n",
            "upstream",
            6,
            id="second model entry",
        ),
        pytest.param(
            "server:\n  api_keys:\n    - key: abc\n      team: a\n" + ONE_MODEL,
            "team",
            4,
            id="api key entry",
        ),
    ],
)
def test_unknown_key_is_refused_with_its_name_and_line(text: str, key: str, line: int) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, {}, source="gateway.yaml")

    problems = str(caught.value).splitlines()[1:]
    assert any(
        f"gateway.yaml:{line}:" in problem and "unknown key" in problem and key in problem
        for problem in problems
    ), str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    text = ONE_MODEL + "    timeout: 5\nimages:\n  max_images: 3\n"

    with pytest.raises(ConfigError) as caught:
        parse_config(text, {})

    assert "'models.0.timeout'" in str(caught.value)
    assert "'images.max_images'" in str(caught.value)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("    timeout_s: soon\n", "timeout_s"),
        ("    timeout_s: -1\n", "timeout_s"),
        ("    fallbacks: other\n", "fallbacks"),
        ("    options: [a]\n", "options"),
    ],
)
def test_wrong_types_are_reported_with_field_and_line(line: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(ONE_MODEL + line, {}, source="gateway.yaml")

    assert re.search(rf"gateway\.yaml:4: models\.0\.{field}: ", str(caught.value))


def test_unknown_provider_kind_is_a_type_error() -> None:
    text = "models:\n  - name: m\n    provider: openia\n"

    with pytest.raises(ConfigError, match=r"config:3: models\.0\.provider: "):
        parse_config(text, {})


@pytest.mark.parametrize("missing", ["name", "provider"])
def test_model_name_and_provider_are_required(missing: str) -> None:
    entry = {"name": "name: m", "provider": "provider: openai"}
    del entry[missing]
    text = "models:\n  - " + "\n    ".join(entry.values()) + "\n"

    with pytest.raises(ConfigError, match=rf"models\.0\.{missing}: Field required"):
        parse_config(text, {})


def test_defaults_fill_everything_but_name_and_provider() -> None:
    config = parse_config(ONE_MODEL, {})

    assert config.server.api_keys == []
    assert config.server.max_request_bytes == 32 * 1024 * 1024
    assert config.server.playground is True
    assert config.images.max_images_per_request == 16
    assert config.images.max_image_bytes == 20 * 1024 * 1024
    assert config.images.max_image_pixels == 50_000_000
    assert config.images.fetch_timeout_s == 10.0
    assert config.images.allow_private_networks is False
    assert config.images.fetch_remote == "auto"
    assert config.state.backend == "memory"
    entry = config.models[0]
    assert entry.upstream_model is None
    assert entry.base_url is None
    assert entry.api_key == ""
    assert entry.timeout_s == DEFAULT_TIMEOUT_S
    assert entry.poll_interval_s == DEFAULT_POLL_INTERVAL_S
    assert entry.rpm == 0
    assert entry.options == {}
    assert entry.fallbacks == []
    assert entry.api_key_variables == ()


def test_empty_document_is_a_config_with_no_models() -> None:
    assert parse_config("", {}).models == []


def test_trailing_slash_of_base_url_is_dropped() -> None:
    text = ONE_MODEL + "    base_url: http://gpu:8000/v1/\n"

    assert parse_config(text, {}).models[0].base_url == "http://gpu:8000/v1"


def test_empty_gateway_key_means_no_key_is_required() -> None:
    text = 'server:\n  api_keys: ["${GATEWAY_KEY:-}", {key: "k2", name: b}]\n' + ONE_MODEL

    keys = parse_config(text, {}).server.active_keys()

    assert keys == [ApiKey(key="k2", name="b")]


@pytest.mark.parametrize(
    ("api_key", "variables"),
    [
        ("${AIMLAPI_API_KEY:-}", ("AIMLAPI_API_KEY",)),
        ("${AIMLAPI_API_KEY}", ("AIMLAPI_API_KEY",)),
        ("${PREFIX:-sk}-${SUFFIX:-}", ("PREFIX", "SUFFIX")),
        ("sk-literal", ()),
    ],
)
def test_api_key_variables_are_recorded(api_key: str, variables: tuple[str, ...]) -> None:
    text = ONE_MODEL + f'    api_key: "{api_key}"\n'
    environ = {"AIMLAPI_API_KEY": "set"}

    assert parse_config(text, environ).models[0].api_key_variables == variables


def test_api_key_variables_are_recorded_per_entry() -> None:
    text = ONE_MODEL + '  - name: n\n    provider: aimlapi\n    api_key: "${AIML:-}"\n'

    config = parse_config(text, {})

    assert [entry.api_key_variables for entry in config.models] == [(), ("AIML",)]


def test_invalid_yaml_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"gateway\.yaml: not valid YAML"):
        parse_config("models: [unclosed\n", {}, source="gateway.yaml")


@pytest.mark.parametrize("text", ["- name: m\n  provider: openai\n", "just words\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        parse_config(text, {})


def test_load_config_reads_the_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(ONE_MODEL + "    api_key: ${KEY}\n", encoding="utf-8")

    assert load_config(path, {"KEY": "k"}).models[0].api_key == "k"
    path.write_text(ONE_MODEL + "    colour: blue\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:4: unknown key")):
        load_config(str(path), {})


def test_load_config_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(ONE_MODEL + "    api_key: ${KEY}\n", encoding="utf-8")
    monkeypatch.setenv("KEY", "from-env")

    assert load_config(path).models[0].api_key == "from-env"


@pytest.mark.parametrize("name", ["missing.yaml", "."])
def test_unreadable_file_is_a_config_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name

    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(path, {})


def test_provider_not_available_is_refused_when_the_router_is_built(
    provider_context: ProviderContext,
) -> None:
    kinds = {kind: cls for kind, cls in PROVIDER_KINDS.items() if kind != "takeoff"}
    config = make_config([{"name": "t", "provider": "takeoff", "api_key": "k"}])

    with pytest.raises(ConfigError, match="'takeoff' is not available"):
        Router(config, provider_context, kinds)


@pytest.mark.parametrize("provider", ["openai", "aimlapi", "inspect"])
def test_unknown_options_are_refused_by_name(
    provider: str, provider_context: ProviderContext
) -> None:
    entry = {"name": "m", "provider": provider, "api_key": "k", "options": {"temprature": 1}}
    config = make_config([entry])

    with pytest.raises(ConfigError, match="temprature"):
        Router(config, provider_context)


def test_unknown_options_are_refused_even_while_the_key_is_unset(
    provider_context: ProviderContext,
) -> None:
    text = 'models:\n  - {name: m, provider: aimlapi, api_key: "${AIML:-}", options: {x: 1}}\n'

    with pytest.raises(ConfigError, match="bad options for provider aimlapi: x"):
        Router(parse_config(text, {}), provider_context)


def test_fallback_naming_an_unknown_model_is_refused(provider_context: ProviderContext) -> None:
    config = make_config([{"name": "m", "provider": "inspect", "fallbacks": ["gpt-5o"]}])

    with pytest.raises(ConfigError, match="gpt-5o"):
        Router(config, provider_context)


def test_fallback_naming_an_unknown_model_is_refused_even_while_the_key_is_unset(
    provider_context: ProviderContext,
) -> None:
    text = 'models:\n  - {name: m, provider: aimlapi, api_key: "${AIML:-}", fallbacks: [gpt-5o]}\n'

    with pytest.raises(ConfigError, match="gpt-5o"):
        Router(parse_config(text, {}), provider_context)


def test_the_responses_block_has_defaults_and_refuses_unknown_keys() -> None:
    assert (parse_config("{}").responses.ttl_s, parse_config("{}").responses.max_bytes) == (
        3600,
        268435456,
    )
    config = parse_config("responses:\n  ttl_s: 0\n  max_bytes: 1024\n")
    assert (config.responses.ttl_s, config.responses.max_bytes) == (0, 1024)
    with pytest.raises(ConfigError, match=r"config:3: unknown key 'responses.ttl'"):
        parse_config("responses:\n  ttl_s: 5\n  ttl: 5\n")


def test_streams_keepalive_interval_defaults_to_5_s_and_must_be_positive() -> None:
    assert parse_config("{}").server.stream_keepalive_s == 5.0
    assert parse_config("server:\n  stream_keepalive_s: 0.25\n").server.stream_keepalive_s == 0.25
    for value in ("0", "-1"):
        with pytest.raises(ConfigError, match=r"config:2: server\.stream_keepalive_s: "):
            parse_config(f"server:\n  stream_keepalive_s: {value}\n")


def test_a_model_keeps_no_answers_unless_it_asks_and_then_with_the_defaults() -> None:
    config = make_config(
        [
            {"name": "plain", "provider": "inspect"},
            {"name": "kept", "provider": "inspect", "cache": {}},
        ]
    )
    plain, kept = config.models

    assert plain.cache is None
    assert kept.cache is not None
    assert (kept.cache.ttl_s, kept.cache.max_entry_bytes) == (3600, 1024 * 1024)
    assert (kept.cache.when, kept.cache.url_images, kept.cache.shared) == (
        "repeatable",
        "by_content",
        False,
    )
    assert config.cache.max_bytes == 256 * 1024 * 1024


def test_an_unknown_key_in_a_model_s_cache_names_it_and_its_line() -> None:
    text = "models:\n  - name: m\n    provider: inspect\n    cache:\n      tll_s: 60\n"

    with pytest.raises(ConfigError) as refused:
        parse_config(text, environ={})

    assert "config:5: unknown key 'models.0.cache.tll_s'" in str(refused.value)
