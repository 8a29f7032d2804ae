"""Masterpiece X through the gateway: uploads to its storage, the image query job polled to the
end, the answer, streams that start before the job is done, and failures, with the openai SDK."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.e2e.clients import async_sdk, sdk
from tests.e2e.deployments import png_bytes
from tests.e2e.envelope import assert_error, stream_until_error
from tests.e2e.providers.conftest import StartJobGateway
from tests.e2e.providers.deployments import MPX_KEY, ask, data_uri
from tests.e2e.providers.fakes import FakeMasterpieceX, ImageHost, MPXJob

pytestmark = pytest.mark.e2e

QUESTION = "What is in this image?"
ANSWER = MPXJob().output


def post(gateway: str, messages: object, **fields: object) -> httpx.Response:
    body = {"model": "mpx-vision", "messages": messages, **fields}
    return httpx.post(f"{gateway}/v1/chat/completions", json=body, timeout=10)


def assert_no_key_leaked(text: str) -> None:
    assert MPX_KEY not in text
    assert "X-Goog-Signature" not in text


# Uploads


def test_a_data_uri_image_is_uploaded_with_its_real_type(
    mpx_gateway: str, mpx: FakeMasterpieceX
) -> None:
    image = png_bytes(24, 16, "blue")

    with sdk(mpx_gateway) as client:
        completion = client.chat.completions.create(
            model="mpx-vision", messages=ask(QUESTION, data_uri(image, "image/jpeg"))
        )

    assert completion.choices[0].message.content == ANSWER
    [create] = mpx.requests("POST", "/v2/assets/create")
    assert create.headers["authorization"] == f"Bearer {MPX_KEY}"
    assert create.json["type"] == "image/png"
    assert " " not in create.json["name"]
    assert create.json["name"].endswith(".png")
    assert create.json["description"]
    [put] = mpx.requests("PUT", "/storage/")
    assert put.headers["content-type"] == "image/png"
    assert "authorization" not in put.headers
    assert all(MPX_KEY not in value for value in put.headers.values())
    assert put.body == image
    [stored_url] = mpx.objects
    [query] = mpx.requests("POST", "/v2/llm/image_query")
    assert query.json == {"userPrompt": QUESTION, "imageUrls": [stored_url]}
    assert "?" not in stored_url
    assert [poll.answer for poll in mpx.polls] == ["pending", "processing", "complete"]
    order = [create, put, query, *mpx.requests("GET", "/v2/status/")]
    assert [r.at for r in order] == sorted(r.at for r in order)


def test_the_same_image_is_uploaded_once(mpx_gateway: str, mpx: FakeMasterpieceX) -> None:
    image = png_bytes(30, 20, "green")

    with sdk(mpx_gateway) as client:
        for declared in ("image/png", "image/jpeg"):
            client.chat.completions.create(
                model="mpx-vision", messages=ask(QUESTION, data_uri(image, declared))
            )
        client.chat.completions.create(
            model="mpx-vision",
            messages=ask("And these?", data_uri(image), data_uri(image, "image/webp")),
        )

    assert len(mpx.requests("POST", "/v2/assets/create")) == 1
    assert len(mpx.requests("PUT", "/storage/")) == 1
    [stored_url] = mpx.objects
    queries = [r.json["imageUrls"] for r in mpx.requests("POST", "/v2/llm/image_query")]
    assert queries == [[stored_url], [stored_url], [stored_url, stored_url]]


def test_an_image_url_is_fetched_and_uploaded(
    mpx_gateway: str, mpx: FakeMasterpieceX, image_host: ImageHost
) -> None:
    image = png_bytes(40, 30, "yellow")
    url = image_host.put("tabby.png", image, content_type="application/octet-stream")

    with sdk(mpx_gateway) as client:
        completion = client.chat.completions.create(
            model="mpx-vision", messages=ask(QUESTION, f"{url}?size=large&token=abc")
        )

    assert completion.choices[0].message.content == ANSWER
    assert image_host.fetched == ["tabby.png"]
    [create] = mpx.requests("POST", "/v2/assets/create")
    assert create.json["type"] == "image/png"
    [(stored_url, stored)] = mpx.objects.items()
    assert stored.data == image
    [query] = mpx.requests("POST", "/v2/llm/image_query")
    assert query.json["imageUrls"] == [stored_url]


def test_an_image_url_is_passed_on_when_remote_uploads_are_off(
    start_mpx_gateway: StartJobGateway, mpx: FakeMasterpieceX, image_host: ImageHost
) -> None:
    gateway = start_mpx_gateway(options={"upload_remote_images": False})
    mpx.accept_any_url = True
    url = image_host.put("tabby.png", png_bytes(40, 30)) + "?size=large"

    with sdk(gateway) as client:
        completion = client.chat.completions.create(
            model="mpx-vision", messages=ask(QUESTION, url, data_uri(png_bytes(6, 6)))
        )

    assert completion.choices[0].message.content == ANSWER
    [stored_url] = mpx.objects
    [query] = mpx.requests("POST", "/v2/llm/image_query")
    assert query.json["imageUrls"] == [url, stored_url]
    assert len(mpx.requests("PUT", "/storage/")) == 1
    assert image_host.fetched == []


# Prompts and answers


def test_the_conversation_is_flattened_into_the_user_prompt(
    mpx_gateway: str, mpx: FakeMasterpieceX
) -> None:
    with sdk(mpx_gateway) as client:
        client.chat.completions.create(
            model="mpx-vision",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                *ask("What is in this picture?", data_uri(png_bytes(8, 8))),
            ],
        )

    [query] = mpx.requests("POST", "/v2/llm/image_query")
    assert query.json["userPrompt"] == (
        "Be brief.\n\nUser: Hi\nAssistant: Hello!\n\nUser: What is in this picture?"
    )


def test_a_text_only_conversation_is_an_llm_call(mpx_gateway: str, mpx: FakeMasterpieceX) -> None:
    mpx.script(MPXJob(output="Rain on the window."))

    with sdk(mpx_gateway) as client:
        completion = client.chat.completions.create(
            model="mpx-vision",
            messages=[{"role": "user", "content": "Write a haiku about rain."}],
            max_tokens=50,
            temperature=0.5,
        )

    assert completion.choices[0].message.content == "Rain on the window."
    [call] = mpx.requests("POST", "/v2/llm/llm_call")
    assert call.json["userPrompt"] == "Write a haiku about rain."
    assert call.json["dataParms"] == {"maxTokens": 50, "temperature": 0.5}
    assert mpx.requests("POST", "/v2/llm/image_query") == []
    assert mpx.requests("POST", "/v2/assets/create") == []


@pytest.mark.anyio
async def test_the_answer_carries_the_job_details(mpx_gateway: str, mpx: FakeMasterpieceX) -> None:
    mpx.balance = 987
    mpx.script(MPXJob(output="A blue rectangle.", processing_time_s=4.5))

    async with async_sdk(mpx_gateway) as client:
        completion = await client.chat.completions.create(
            model="mpx-vision", messages=ask(QUESTION, data_uri(png_bytes(12, 12, "blue")))
        )

    assert completion.model == "mpx-vision"
    assert completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "A blue rectangle."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    [request_id] = mpx.jobs
    assert completion.model_extra is not None
    assert completion.model_extra["x_gateway"] == {
        "provider": "masterpiecex",
        "job_id": request_id,
        "balance": 987,
        "processing_time_s": 4.5,
    }


def test_waiting_for_the_job_is_not_gateway_overhead(
    mpx_gateway: str, mpx: FakeMasterpieceX
) -> None:
    """`x-gateway-overhead-ms` is the gateway's own time, upstream time excluded:
    the time a job runs upstream is upstream time, polls or no polls."""
    mpx.script(MPXJob(duration_s=0.6))
    started = time.monotonic()

    response = post(mpx_gateway, ask(QUESTION, data_uri(png_bytes(10, 10))))

    assert response.status_code == 200, response.text
    assert time.monotonic() - started >= 0.6
    overhead_ms = float(response.headers["x-gateway-overhead-ms"])
    assert overhead_ms < 250, f"{overhead_ms:.0f} ms of a 600 ms job counted as gateway overhead"


# Streams


def test_the_stream_starts_when_the_job_is_submitted(
    mpx_gateway: str, mpx: FakeMasterpieceX
) -> None:
    mpx.script(MPXJob(duration_s=0.6))
    arrivals: list[tuple[float, openai.types.chat.ChatCompletionChunk]] = []

    with (
        sdk(mpx_gateway) as client,
        client.chat.completions.create(
            model="mpx-vision",
            messages=ask(QUESTION, data_uri(png_bytes(10, 10))),
            stream=True,
            stream_options={"include_usage": True},
        ) as stream,
    ):
        arrivals.extend((time.monotonic(), chunk) for chunk in stream)

    [run] = mpx.jobs.values()
    assert run.done_at is not None
    (role_at, role), *rest = arrivals
    assert role.choices[0].delta.role == "assistant"
    assert role_at < run.done_at - 0.3, "the role chunk waited for the job"
    content = [(at, c) for at, c in rest if c.choices and c.choices[0].delta.content]
    assert "".join(c.choices[0].delta.content or "" for _, c in content) == ANSWER
    assert content[0][0] >= run.done_at
    chunks = [chunk for _, chunk in arrivals]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert len({chunk.id for chunk in chunks}) == 1
    assert {chunk.model for chunk in chunks} == {"mpx-vision"}


@pytest.mark.anyio
async def test_an_async_stream_gives_the_answer(mpx_gateway: str, mpx: FakeMasterpieceX) -> None:
    mpx.script(MPXJob(output="Two cats on a sofa."))

    async with async_sdk(mpx_gateway) as client:
        stream = await client.chat.completions.create(
            model="mpx-vision", messages=ask(QUESTION, data_uri(png_bytes(9, 9))), stream=True
        )
        async with stream:
            chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Two cats on a sofa."
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)


def test_a_long_job_streams_keepalives_until_the_answer(
    mpx_gateway: str, mpx: FakeMasterpieceX
) -> None:
    mpx.script(MPXJob(duration_s=5.6))
    body = {
        "model": "mpx-vision",
        "messages": ask(QUESTION, data_uri(png_bytes(10, 10))),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    lines: list[tuple[float, str]] = []

    with httpx.stream(
        "POST", f"{mpx_gateway}/v1/chat/completions", json=body, timeout=15
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines.extend((time.monotonic(), line) for line in response.iter_lines() if line)

    [run] = mpx.jobs.values()
    assert run.done_at is not None
    keepalives = [at for at, line in lines if line.startswith(":")]
    assert keepalives, "no keepalive during a 5.6 s job"
    assert all(line == ": keepalive" for _, line in lines if line.startswith(":"))
    assert lines[0][1].startswith("data: ")
    assert lines[0][0] < keepalives[0] < run.done_at
    events = [line.removeprefix("data: ") for _, line in lines if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[1:-2]) == ANSWER
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] is not None


def test_a_client_that_goes_away_stops_the_polling(mpx_gateway: str, mpx: FakeMasterpieceX) -> None:
    mpx.script(MPXJob(polls=100_000))

    with sdk(mpx_gateway) as client:
        stream = client.chat.completions.create(
            model="mpx-vision", messages=ask(QUESTION, data_uri(png_bytes(10, 10))), stream=True
        )
        next(iter(stream))
        deadline = time.monotonic() + 2
        while len(mpx.polls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        stream.close()
    closed_at = time.monotonic()

    time.sleep(1.0)
    settled = len(mpx.polls)
    time.sleep(0.3)

    assert len(mpx.polls) == settled, "polling went on after the client left"
    assert settled >= 3
    assert mpx.polls[-1].at < closed_at + 1.0


def test_a_stream_abandoned_before_its_first_chunk_stops_the_submission(
    mpx_gateway: str, mpx: FakeMasterpieceX
) -> None:
    """A client that gives up while the job is still being submitted: the gateway drops the
    submission too, instead of finishing it for nobody."""
    mpx.script(MPXJob(submit_delay_s=1.0, polls=100_000))
    body = {"model": "mpx-vision", "messages": ask(QUESTION), "stream": True}

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{mpx_gateway}/v1/chat/completions", json=body, timeout=0.3)
    time.sleep(1.2)

    assert mpx.abandoned_submissions == 1
    assert mpx.polls == []


def test_a_non_streamed_client_that_goes_away_stops_the_polling(
    mpx_gateway: str, mpx: FakeMasterpieceX
) -> None:
    mpx.script(MPXJob(polls=100_000))
    body = {"model": "mpx-vision", "messages": ask(QUESTION, data_uri(png_bytes(10, 10)))}

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{mpx_gateway}/v1/chat/completions", json=body, timeout=0.6)
    left_at = time.monotonic()

    time.sleep(1.0)
    settled = len(mpx.polls)
    time.sleep(0.3)

    assert settled >= 1, "the job was never polled"
    assert len(mpx.polls) == settled, "polling went on after the client left"
    assert mpx.polls[-1].at < left_at + 1.0


# Failures


def test_a_failed_job_is_job_failed_with_the_upstream_reason(
    mpx_gateway: str, mpx: FakeMasterpieceX
) -> None:
    mpx.script(MPXJob(fail="the image could not be processed"))

    response = post(mpx_gateway, ask(QUESTION, data_uri(png_bytes(10, 10))))

    error = assert_error(response, 502, "upstream_error", "job_failed")
    assert "the image could not be processed" in error["message"]
    assert_no_key_leaked(response.text)


def test_a_job_that_fails_mid_stream_ends_with_an_error_event(
    mpx_gateway: str, mpx: FakeMasterpieceX
) -> None:
    mpx.script(MPXJob(fail="the image could not be processed"))

    with sdk(mpx_gateway) as client:
        received, error = stream_until_error(
            client, model="mpx-vision", messages=ask(QUESTION, data_uri(png_bytes(10, 10)))
        )

    assert [chunk.choices[0].delta.role for chunk in received] == ["assistant"]
    assert isinstance(error.body, dict)
    assert error.body["code"] == "job_failed"
    assert "the image could not be processed" in error.message


def test_a_failed_stream_has_no_done_after_the_error(
    mpx_gateway: str, mpx: FakeMasterpieceX
) -> None:
    mpx.script(MPXJob(fail="out of credits"))

    response = post(mpx_gateway, ask(QUESTION, data_uri(png_bytes(10, 10))), stream=True)

    assert response.status_code == 200
    events = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert "[DONE]" not in response.text
    error = json.loads(events[-1].removeprefix("data: "))["error"]
    assert error["type"] == "upstream_error"
    assert error["code"] == "job_failed"
    assert "out of credits" in error["message"]


def test_a_job_past_the_deadline_is_upstream_timeout(
    start_mpx_gateway: StartJobGateway, mpx: FakeMasterpieceX
) -> None:
    gateway = start_mpx_gateway(timeout_s=0.5)
    mpx.script(MPXJob(polls=100_000))
    started = time.monotonic()

    response = post(gateway, ask(QUESTION, data_uri(png_bytes(10, 10))))

    assert_error(response, 504, "upstream_error", "upstream_timeout")
    assert time.monotonic() - started < 1.5
    polls = len(mpx.polls)
    assert polls >= 1  # it was polling; how often depends on the machine's load
    time.sleep(0.2)
    assert len(mpx.polls) == polls


def test_a_refused_key_is_upstream_auth_failed(mpx_gateway: str, mpx: FakeMasterpieceX) -> None:
    mpx.refuse_key = True

    for messages in (ask(QUESTION, data_uri(png_bytes(10, 10))), ask("Just text.")):
        response = post(mpx_gateway, messages)
        assert_error(response, 502, "upstream_error", "upstream_auth_failed")
        assert_no_key_leaked(response.text)
    assert mpx.jobs == {}


def test_a_poll_that_fails_with_a_5xx_is_tried_again(
    mpx_gateway: str, mpx: FakeMasterpieceX
) -> None:
    mpx.script(MPXJob(polls=2, poll_errors={2: 503}))

    response = post(mpx_gateway, ask(QUESTION, data_uri(png_bytes(10, 10))))

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == ANSWER
    assert [poll.answer for poll in mpx.polls] == ["pending", "503", "complete"]


def test_the_fake_storage_refuses_what_a_presigned_url_refuses(mpx: FakeMasterpieceX) -> None:
    headers = {"Authorization": f"Bearer {MPX_KEY}"}
    create = {"name": "a.png", "description": "an image", "type": "image/png"}
    asset_url = httpx.post(f"{mpx.base_url}/assets/create", json=create, headers=headers).json()[
        "assetUrl"
    ]
    image = png_bytes(4, 4)

    with_key = httpx.put(asset_url, content=image, headers={**headers, "Content-Type": "image/png"})
    wrong_type = httpx.put(asset_url, content=image, headers={"Content-Type": "image/jpeg"})
    unsigned = httpx.put(
        asset_url.split("?")[0], content=image, headers={"Content-Type": "image/png"}
    )
    good = httpx.put(asset_url, content=image, headers={"Content-Type": "image/png"})

    assert [r.status_code for r in (with_key, wrong_type, unsigned, good)] == [400, 403, 403, 200]
    assert httpx.get(asset_url.split("?")[0]).content == image


@pytest.mark.parametrize("status", [403, 503])
def test_an_upload_storage_refuses_fails_without_leaking_the_presigned_url(
    mpx_gateway: str, mpx: FakeMasterpieceX, status: int
) -> None:
    mpx.storage_status = status

    response = post(mpx_gateway, ask(QUESTION, data_uri(png_bytes(10, 10))))

    assert_error(response, 502, "upstream_error", response.json()["error"]["code"])
    assert response.json()["error"]["code"] in ("upstream_failed", "upstream_auth_failed")
    assert_no_key_leaked(response.text)
    assert "X-Goog" not in response.text
    assert mpx.requests("POST", "/v2/llm/image_query") == []


def test_a_streamed_job_past_the_deadline_ends_with_upstream_timeout(
    start_mpx_gateway: StartJobGateway, mpx: FakeMasterpieceX
) -> None:
    gateway = start_mpx_gateway(timeout_s=0.5)
    mpx.script(MPXJob(polls=100_000))

    with sdk(gateway) as client:
        received, error = stream_until_error(
            client, model="mpx-vision", messages=ask(QUESTION, data_uri(png_bytes(10, 10)))
        )

    assert [chunk.choices[0].delta.role for chunk in received] == ["assistant"]
    assert isinstance(error.body, dict)
    assert error.body["code"] == "upstream_timeout"


def test_the_deadline_of_a_stream_counts_from_the_request(
    start_mpx_gateway: StartJobGateway, mpx: FakeMasterpieceX
) -> None:
    """`timeout_s` is the whole request's deadline, job polling included, streamed
    or not: the time spent submitting the job is not given again to the polling."""
    gateway = start_mpx_gateway(timeout_s=0.6)
    mpx.script(MPXJob(polls=100_000, submit_delay_s=0.4))
    started = time.monotonic()

    response = post(gateway, ask(QUESTION, data_uri(png_bytes(10, 10))), stream=True)

    ended = time.monotonic() - started
    assert "upstream_timeout" in response.text
    assert ended < 0.85, f"the stream ended {ended:.2f} s after the request; its deadline is 0.6 s"
