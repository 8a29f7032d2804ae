"""The response cache's pieces: what `Cache-Control` asks, a kept answer as stored, and a
stream's chunks put back together as the answer they make."""

from __future__ import annotations

import pytest

from app.service.cache import CacheControl, Entry, Recorder
from app.wire.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    Choice,
    ChoiceDelta,
    ChunkChoice,
    CompletionUsage,
)


@pytest.mark.parametrize(
    ("header", "look_up", "store"),
    [
        (None, True, True),
        ("max-age=0", True, True),
        ("no-cache", False, True),
        ("No-Cache, max-age=0", False, True),
        ("no-store", False, False),
        ("no-cache, no-store", False, False),
    ],
)
def test_cache_control_says_whether_to_look_up_and_to_keep(
    header: str | None, look_up: bool, store: bool
) -> None:
    control = CacheControl.of(header, "team-a")

    assert (control.owner, control.look_up, control.store) == ("team-a", look_up, store)


def completion(text: str = "Purple.") -> ChatCompletion:
    message = ChatCompletionMessage(content=text)
    return ChatCompletion(
        model="m",
        choices=[Choice(index=0, message=message, finish_reason="stop")],
        usage=CompletionUsage(prompt_tokens=12, completion_tokens=3, total_tokens=15),
    )


def test_a_kept_answer_reads_back_as_it_was_stored() -> None:
    entry = Entry(completion(), upstream_s=2.5, credits=100.0)

    again = Entry.loads(entry.dumps())

    assert again is not None
    assert again.completion == entry.completion
    assert (again.upstream_s, again.credits) == (2.5, 100.0)


@pytest.mark.parametrize("text", ['{"v": 0, "upstream_s": 1, "credits": 0}\n{}', "garbage", ""])
def test_a_stored_value_of_another_form_is_no_answer(text: str) -> None:
    assert Entry.loads(text) is None


def chunk(*choices: ChunkChoice, usage: CompletionUsage | None = None) -> ChatCompletionChunk:
    return ChatCompletionChunk(
        id="chatcmpl-1", created=1, model="m", choices=list(choices), usage=usage
    )


def test_a_stream_s_chunks_make_the_answer_text_tool_calls_and_usage() -> None:
    recorder = Recorder()
    call_start = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get", "arguments": '{"ci'},
    }
    call_rest = {"index": 0, "function": {"arguments": 'ty": "Paris"}'}}
    for piece in [
        chunk(ChunkChoice(index=0, delta=ChoiceDelta(role="assistant", content=""))),
        chunk(ChunkChoice(index=0, delta=ChoiceDelta(content="It is "))),
        chunk(ChunkChoice(index=0, delta=ChoiceDelta(content="sunny."))),
        chunk(ChunkChoice(index=0, delta=ChoiceDelta.model_validate({"tool_calls": [call_start]}))),
        chunk(ChunkChoice(index=0, delta=ChoiceDelta.model_validate({"tool_calls": [call_rest]}))),
        chunk(ChunkChoice(index=0, finish_reason="tool_calls")),
        chunk(usage=CompletionUsage(prompt_tokens=5, completion_tokens=4, total_tokens=9)),
    ]:
        recorder.add(piece)

    answer = recorder.completion()

    assert answer is not None
    [choice] = answer.choices
    assert (choice.message.content, choice.finish_reason) == ("It is sunny.", "tool_calls")
    assert (choice.message.model_extra or {})["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (5, 4)


def test_a_stream_that_broke_off_makes_no_answer() -> None:
    recorder = Recorder()
    recorder.add(chunk(ChunkChoice(index=0, delta=ChoiceDelta(content="It is "))))

    assert recorder.completion() is None
