"""The response cache through `python -m app`, with the `openai` SDK: one answer for the same
image however it is sent, per gateway key, in both modes and both APIs; one upstream job for
identical requests at once; what is never kept; and what a response says of it."""

from __future__ import annotations

import base64
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.documents import pages_pdf
from tests.e2e.clients import sdk
from tests.e2e.conftest import AccessLog, StartGateway
from tests.e2e.deployments import entry, png_bytes
from tests.e2e.fakes.images import ImageHost
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply
from tests.e2e.providers.deployments import MPX_KEY, mpx_entry
from tests.e2e.providers.fakes import FakeMasterpieceX, MPXJob
from tests.e2e.servers import ServedFakes
from tests.e2e.test_accounting import scrape, wait_for
from tests.ops.traffic import metric_value

pytestmark = pytest.mark.e2e

IMAGE = png_bytes(40, 30, "purple")
QUESTION = "What colour is this?"
ANSWER = "Purple."
KEYS = ["key-of-team-a", "key-of-team-b"]
LOOPBACK = {"allow_private_networks": True}


def cached(name: str, upstream: FakeUpstream, **cache: Any) -> dict[str, Any]:
    return entry(name, upstream, upstream_model="up-" + name, cache={"ttl_s": 60, **cache})


def ask(url: str, image_url: str, *, model: str = "vision", **fields: Any) -> httpx.Response:
    content = [
        {"type": "text", "text": QUESTION},
        {"type": "image_url", "image_url": {"url": image_url}},
    ]
    headers = {"authorization": f"Bearer {fields.pop('key', KEYS[0])}"}
    headers.update(fields.pop("headers", {}))
    body = {"model": model, "messages": [{"role": "user", "content": content}], **fields}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def ask_about(url: str, file_data: str, *, model: str) -> httpx.Response:
    content = [
        {"type": "text", "text": QUESTION},
        {"type": "file", "file": {"file_data": file_data}},
    ]
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    headers = {"authorization": f"Bearer {KEYS[0]}"}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def data_uri(declared: str = "image/png", *, lines: bool = False) -> str:
    payload = base64.b64encode(IMAGE).decode()
    if lines:  # as MIME writes base64
        payload = "\r\n".join(textwrap.wrap(payload, 76))
    return f"data:{declared};base64,{payload}"


@pytest.fixture
def gateway(start_gateway: StartGateway, openai_upstream: FakeUpstream) -> str:
    openai_upstream.script("up-vision", Reply(text=ANSWER))
    return start_gateway(
        [
            cached("vision", openai_upstream),
            cached("always", openai_upstream, when="always"),
            cached("by-url", openai_upstream, url_images="by_url"),
            cached("shared", openai_upstream, shared=True),
            entry("uncached", openai_upstream, upstream_model="up-vision"),
        ],
        server={"api_keys": KEYS},
        images=LOOPBACK,
    )


def upstream_calls(upstream: FakeUpstream, model: str = "up-vision") -> int:
    return sum(received.model == model for received in upstream.received)


def test_the_same_image_however_it_is_sent_is_one_answer(
    gateway: str, openai_upstream: FakeUpstream, image_host: ImageHost
) -> None:
    url = image_host.put("photo.png", IMAGE)
    spellings = [data_uri(), data_uri("image/jpeg"), data_uri(lines=True), url]

    replies = [ask(gateway, spelling) for spelling in spellings]

    assert [r.status_code for r in replies] == [200] * 4
    assert [r.headers["x-gateway-cache"] for r in replies] == ["miss", "hit", "hit", "hit"]
    assert {r.json()["choices"][0]["message"]["content"] for r in replies} == {ANSWER}
    assert len({r.json()["id"] for r in replies}) == 4  # each answer its own id
    assert upstream_calls(openai_upstream) == 1
    # The URL was fetched once to learn what it holds, then remembered.
    ask(gateway, url)
    assert image_host.fetched == ["photo.png"]


def test_a_document_its_upstream_reads_is_one_answer_however_it_is_sent(
    start_gateway: StartGateway, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("up-native", Reply(text=ANSWER))
    url = start_gateway(
        [{**cached("native", openai_upstream), "documents": "native"}], server={"api_keys": KEYS}
    )
    pdf, other = pages_pdf(20_000), pages_pdf(20_001)
    assert len(pdf.base64) > 256 * 1024  # hashed for the key on a worker thread
    spellings = [pdf.data_uri, pdf.base64, "data:application/octet-stream;base64," + pdf.base64]

    replies = [ask_about(url, data, model="native") for data in [*spellings, other.data_uri]]

    assert [r.status_code for r in replies] == [200] * 4
    assert [r.headers["x-gateway-cache"] for r in replies] == ["miss", "hit", "hit", "miss"]
    assert upstream_calls(openai_upstream, "up-native") == 2


def test_by_url_keys_a_url_image_on_its_address(
    gateway: str, openai_upstream: FakeUpstream, image_host: ImageHost
) -> None:
    openai_upstream.script("up-by-url", Reply(text=ANSWER))
    url = image_host.put("photo.png", IMAGE)

    first, again, inline = (
        ask(gateway, url, model="by-url"),
        ask(gateway, url, model="by-url"),
        (ask(gateway, data_uri(), model="by-url")),
    )

    assert [r.headers["x-gateway-cache"] for r in (first, again, inline)] == ["miss", "hit", "miss"]
    assert image_host.fetched == []  # the upstream fetches URLs itself; the key is the URL


def test_each_gateway_key_has_its_own_answers_unless_the_entry_shares_them(
    gateway: str, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("up-shared", Reply(text=ANSWER))

    own = [ask(gateway, data_uri(), key=key).headers["x-gateway-cache"] for key in KEYS]
    shared = [
        ask(gateway, data_uri(), key=key, model="shared").headers["x-gateway-cache"] for key in KEYS
    ]

    assert own == ["miss", "miss"]
    assert shared == ["miss", "hit"]


def test_a_streamed_hit_reads_like_the_miss_it_repeats(
    gateway: str, openai_upstream: FakeUpstream
) -> None:
    def streamed() -> tuple[str, list[Any]]:
        with sdk(gateway, KEYS[0]) as client:
            raw = client.chat.completions.with_raw_response.create(
                model="vision",
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": QUESTION},
                            {"type": "image_url", "image_url": {"url": data_uri()}},
                        ],
                    }
                ],
                stream=True,
                stream_options={"include_usage": True},
            )
            return raw.headers["x-gateway-cache"], list(raw.parse())

    (missed, live), (hit, replayed) = streamed(), streamed()

    assert (missed, hit) == ("miss", "hit")
    for chunks in (live, replayed):
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[0].choices[0].delta.role == "assistant"
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 7)
        assert len({c.id for c in chunks}) == 1
    assert live[0].id != replayed[0].id
    assert upstream_calls(openai_upstream) == 1


def test_the_responses_api_is_cached_through_the_same_path(
    gateway: str, openai_upstream: FakeUpstream
) -> None:
    content = [
        {"type": "input_text", "text": QUESTION},
        {"type": "input_image", "image_url": data_uri()},
    ]
    body = {"model": "vision", "input": [{"role": "user", "content": content}], "store": False}
    headers = {"authorization": f"Bearer {KEYS[0]}"}

    replies = [
        httpx.post(f"{gateway}/v1/responses", json=body, headers=headers, timeout=30)
        for _ in range(2)
    ]
    chat = ask(gateway, data_uri())

    assert [r.headers["x-gateway-cache"] for r in (*replies, chat)] == ["miss", "hit", "hit"]
    assert [r.json()["output"][0]["content"][0]["text"] for r in replies] == [ANSWER, ANSWER]
    assert upstream_calls(openai_upstream) == 1


def test_what_is_not_repeatable_is_not_cached_unless_the_entry_says_always(
    gateway: str, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("up-always", Reply(text=ANSWER))

    warm = [ask(gateway, data_uri(), temperature=0.8) for _ in range(2)]
    always = [ask(gateway, data_uri(), temperature=0.8, model="always") for _ in range(2)]
    cold = ask(gateway, data_uri(), temperature=0)

    assert [r.headers["x-gateway-cache"] for r in warm] == ["bypass", "bypass"]
    assert [r.headers["x-gateway-cache"] for r in always] == ["miss", "hit"]
    assert cold.headers["x-gateway-cache"] == "miss"
    assert "x-gateway-cache" not in ask(gateway, data_uri(), model="uncached").headers


def test_cache_control_skips_the_look_up_or_the_cache(
    gateway: str, openai_upstream: FakeUpstream
) -> None:
    first = ask(gateway, data_uri())
    fresh = ask(gateway, data_uri(), headers={"cache-control": "no-cache"})
    unkept = ask(gateway, data_uri("image/webp"), headers={"cache-control": "no-store"})
    again = ask(gateway, data_uri())

    results = [r.headers["x-gateway-cache"] for r in (first, fresh, unkept, again)]
    assert results == ["miss", "miss", "bypass", "hit"]
    assert upstream_calls(openai_upstream) == 3


def test_a_failure_is_not_kept(gateway: str, openai_upstream: FakeUpstream) -> None:
    openai_upstream.script("up-vision", Reply(status=500), Reply(text=ANSWER))

    failed, answered, again = (ask(gateway, data_uri()) for _ in range(3))

    assert (failed.status_code, answered.status_code, again.status_code) == (502, 200, 200)
    assert [r.headers["x-gateway-cache"] for r in (answered, again)] == ["miss", "hit"]


def test_a_kept_answer_lives_its_ttl(
    start_gateway: StartGateway, openai_upstream: FakeUpstream
) -> None:
    openai_upstream.script("up-brief", Reply(text=ANSWER))
    gateway = start_gateway(
        [entry("brief", openai_upstream, upstream_model="up-brief", cache={"ttl_s": 1})],
        server={"api_keys": KEYS},
    )

    first, soon = ask(gateway, data_uri(), model="brief"), ask(gateway, data_uri(), model="brief")
    time.sleep(1.3)
    later = ask(gateway, data_uri(), model="brief")

    assert [r.headers["x-gateway-cache"] for r in (first, soon, later)] == ["miss", "hit", "miss"]


@pytest.fixture
def mpx(served_fakes: ServedFakes) -> FakeMasterpieceX:
    return served_fakes.fresh(FakeMasterpieceX, MPX_KEY)


def test_identical_requests_at_once_make_one_upstream_job(
    start_gateway: StartGateway, mpx: FakeMasterpieceX, access_log: AccessLog
) -> None:
    mpx.script(MPXJob(duration_s=1.0, output=ANSWER))
    gateway = start_gateway(
        [mpx_entry(mpx, "jobs", cache={"ttl_s": 60})], server={"api_keys": KEYS}
    )

    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(lambda _: ask(gateway, data_uri(), model="jobs"), range(20)))

    assert [r.status_code for r in replies] == [200] * 20
    assert {r.json()["choices"][0]["message"]["content"] for r in replies} == {ANSWER}
    assert len(mpx.requests("POST", "/v2/llm/image_query")) == 1
    results = sorted(r.headers["x-gateway-cache"] for r in replies)
    assert results == ["hit"] * 19 + ["miss"]
    exposition = scrape(gateway)
    assert (
        metric_value(exposition, "gateway_cache_requests_total", model="jobs", result="hit") == 19
    )
    assert metric_value(exposition, "gateway_cache_upstream_seconds_saved_total") > 19 * 0.9
    wait_for(lambda: len(access_log(gateway)) >= 20)
    logged = [str(line["cache"]) for line in access_log(gateway) if line.get("model") == "jobs"]
    assert sorted(logged) == results


def test_waiters_ask_for_themselves_when_the_first_fails(
    start_gateway: StartGateway, mpx: FakeMasterpieceX
) -> None:
    mpx.script(MPXJob(duration_s=0.5, fail="out of credits"), MPXJob(output=ANSWER))
    gateway = start_gateway([mpx_entry(mpx, "jobs", cache={"ttl_s": 60})])

    with ThreadPoolExecutor(5) as pool:
        replies = list(pool.map(lambda _: ask(gateway, data_uri(), model="jobs"), range(5)))

    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 200, 200, 200, 502]
    # The failed job's waiters did not all ask: one asked again, the rest waited for it.
    assert len(mpx.requests("POST", "/v2/llm/image_query")) == 2


def test_the_cache_is_off_for_a_model_without_one(
    gateway: str, openai_upstream: FakeUpstream
) -> None:
    with sdk(gateway, KEYS[0]) as client:
        for _ in range(2):
            client.chat.completions.create(
                model="uncached", messages=[{"role": "user", "content": QUESTION}]
            )

    assert upstream_calls(openai_upstream) == 2
