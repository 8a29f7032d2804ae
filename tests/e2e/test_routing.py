"""Routing across deployments: retries, groups that fail over, fallbacks, wildcard families."""

from __future__ import annotations

import openai
import pytest

from tests.e2e.conftest import MakeClient, StartGateway
from tests.e2e.deployments import entry, user_message
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.e2e.servers import refused_port

pytestmark = pytest.mark.e2e


def ask(client: openai.OpenAI, model: str) -> str:
    completion = client.chat.completions.create(model=model, messages=user_message())
    assert completion.model == model
    return completion.choices[0].message.content or ""


@pytest.mark.parametrize("stream", [False, True])
def test_a_failure_is_retried_on_the_same_deployment(
    start_gateway: StartGateway,
    make_client: MakeClient,
    openai_upstream: FakeUpstream,
    stream: bool,
) -> None:
    openai_upstream.script("flaky", Reply(status=502), Reply(text="second try"))
    gateway = start_gateway([entry("vision", openai_upstream, upstream_model="flaky", retries=1)])
    client = make_client(gateway)

    if stream:
        with client.chat.completions.create(
            model="vision", messages=user_message(), stream=True
        ) as chunks:
            text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    else:
        text = ask(client, "vision")

    assert text == "second try"
    assert [r.model for r in openai_upstream.received] == ["flaky", "flaky"]


def test_group_fails_over_from_a_5xx_to_the_next_entry(
    start_gateway: StartGateway, make_client: MakeClient, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("broken", Reply(status=500))
    openai_upstream.script("healthy", Reply(text="from the healthy deployment"))
    gateway = start_gateway(
        [
            entry("vision", openai_upstream, upstream_model="broken"),
            entry("vision", openai_upstream, upstream_model="healthy"),
        ]
    )
    client = make_client(gateway)

    answers = [ask(client, "vision") for _ in range(4)]

    assert answers == ["from the healthy deployment"] * 4
    tried = [r.model for r in openai_upstream.received]
    assert tried.count("healthy") == 4
    assert "broken" in tried
    assert all(tried[i + 1] == "healthy" for i, model in enumerate(tried) if model == "broken")


def test_group_fails_over_from_an_unreachable_entry_while_streaming(
    start_gateway: StartGateway, make_client: MakeClient, aimlapi_upstream: FakeUpstream
) -> None:
    aimlapi_upstream.script("healthy", Reply(deltas=["still ", "here"]))
    with refused_port() as closed:
        gateway = start_gateway(
            [
                entry("vision", f"{closed}/v1"),
                entry("vision", aimlapi_upstream, upstream_model="healthy"),
            ]
        )

        with make_client(gateway).chat.completions.create(
            model="vision",
            messages=user_message(),
            stream=True,
        ) as stream:
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)

    assert text == "still here"
    assert [r.model for r in aimlapi_upstream.received] == ["healthy"]


def test_group_spreads_requests_across_its_entries(
    start_gateway: StartGateway, make_client: MakeClient, openai_upstream: FakeUpstream
) -> None:
    gateway = start_gateway(
        [
            entry("vision", openai_upstream, upstream_model="first"),
            entry("vision", openai_upstream, upstream_model="second"),
        ]
    )
    client = make_client(gateway)

    for _ in range(4):
        ask(client, "vision")

    assert {r.model for r in openai_upstream.received} == {"first", "second"}


def test_fallbacks_answer_after_the_whole_group_failed(
    start_gateway: StartGateway,
    make_client: MakeClient,
    openai_upstream: FakeUpstream,
    aimlapi_upstream: FakeUpstream,
) -> None:
    openai_upstream.script("overloaded", Reply(status=429, headers={"Retry-After": "30"}))
    openai_upstream.script("crashing", Reply(status=503))
    aimlapi_upstream.script("spare", Reply(text="from the fallback"))
    gateway = start_gateway(
        [
            entry("primary", openai_upstream, upstream_model="overloaded", fallbacks=["backup"]),
            entry("primary", openai_upstream, upstream_model="crashing"),
            entry("backup", aimlapi_upstream, upstream_model="spare"),
        ]
    )

    assert ask(make_client(gateway), "primary") == "from the fallback"

    assert sorted(r.model or "" for r in openai_upstream.received) == ["crashing", "overloaded"]
    assert [r.model for r in aimlapi_upstream.received] == ["spare"]


@pytest.mark.parametrize(
    ("requested", "sent"), [("team/vision-small", "vision-small"), ("primary", "primary")]
)
def test_a_fallback_to_a_family_asks_for_a_real_model(
    start_gateway: StartGateway,
    make_client: MakeClient,
    openai_upstream: FakeUpstream,
    aimlapi_upstream: FakeUpstream,
    requested: str,
    sent: str,
) -> None:
    """A family takes over the variant asked for (or the whole name): never its `*`."""
    openai_upstream.script("vision-small", Reply(status=503))
    openai_upstream.script("primary", Reply(status=503))
    gateway = start_gateway(
        [
            entry("team/*", openai_upstream, fallbacks=["spare/*"]),
            entry("primary", openai_upstream, fallbacks=["spare/*"]),
            entry("spare/*", aimlapi_upstream),
        ]
    )

    assert ask(make_client(gateway), requested) == Reply().text

    assert [r.model for r in aimlapi_upstream.received] == [sent]


def test_client_errors_do_not_fail_over(
    start_gateway: StartGateway,
    make_client: MakeClient,
    openai_upstream: FakeUpstream,
    aimlapi_upstream: FakeUpstream,
) -> None:
    openai_upstream.script("strict", Reply(status=400, error="unsupported image"))
    gateway = start_gateway(
        [
            entry("primary", openai_upstream, upstream_model="strict", fallbacks=["backup"]),
            entry("backup", aimlapi_upstream, upstream_model="spare"),
        ]
    )

    with pytest.raises(openai.BadRequestError) as raised:
        ask(make_client(gateway), "primary")

    assert raised.value.code == "upstream_rejected"
    assert aimlapi_upstream.received == []


def test_wildcard_sends_the_suffix_and_exact_names_win(
    start_gateway: StartGateway, make_client: MakeClient, openai_upstream: FakeUpstream
) -> None:
    gateway = start_gateway(
        [
            entry("family/*", openai_upstream),
            entry("family/deep/*", openai_upstream, upstream_model="deep-model"),
            entry("family/special", openai_upstream, upstream_model="special-model"),
        ]
    )
    client = make_client(gateway)

    for model in (
        "family/llava:13b",
        "family/special",
        "family/deep/anything",
        "family/specialist",
    ):
        ask(client, model)

    assert [r.model for r in openai_upstream.received] == [
        "llava:13b",
        "special-model",
        "deep-model",
        "specialist",
    ]
