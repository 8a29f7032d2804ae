"""One prompt string from a conversation, for upstreams that take a single prompt."""

from __future__ import annotations

from typing import Any

from app.providers.prompt import flatten_conversation, message_text
from app.wire.schemas import ChatCompletionRequest, UserMessage

IMAGE = {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}


def prompt(*messages: dict[str, Any]) -> str:
    request = ChatCompletionRequest.model_validate({"model": "m", "messages": list(messages)})
    return flatten_conversation(request)


def test_lone_user_message_passes_unchanged() -> None:
    assert prompt({"role": "user", "content": "What is in this picture?"}) == (
        "What is in this picture?"
    )


def test_lone_user_message_with_parts_joins_the_text_and_drops_images() -> None:
    content = [{"type": "text", "text": "Compare"}, IMAGE, IMAGE, {"type": "text", "text": "these"}]

    assert prompt({"role": "user", "content": content}) == "Compare\nthese"


def test_system_and_developer_text_comes_first() -> None:
    text = prompt(
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
    )

    assert text == "Be brief.\n\nAnswer in French.\n\nUser: Hi"


def test_history_is_labelled_and_the_last_turn_comes_last() -> None:
    text = prompt(
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE]},
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": "What colour?"},
    )

    assert text == "Be brief.\n\nUser: What is this?\nAssistant: A cat.\n\nUser: What colour?"


def test_history_without_system_text_is_labelled_too() -> None:
    text = prompt(
        {"role": "user", "content": "What is this?"},
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": "Sure?"},
    )

    assert text == "User: What is this?\nAssistant: A cat.\n\nUser: Sure?"


def test_tool_results_and_empty_turns() -> None:
    text = prompt(
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
        {"role": "user", "content": "Thanks"},
    )

    assert text == "User: Weather?\nTool: sunny\n\nUser: Thanks"


def test_a_final_assistant_turn_is_labelled() -> None:
    text = prompt({"role": "assistant", "content": "Once upon a time"})

    assert text == "Assistant: Once upon a time"


def test_only_system_text() -> None:
    assert prompt({"role": "system", "content": "  Be brief.  "}) == "Be brief."


def test_message_text_strips_and_skips_blank_parts() -> None:
    message = UserMessage.model_validate(
        {
            "role": "user",
            "content": [{"type": "text", "text": "  a  "}, {"type": "text", "text": "  "}, IMAGE],
        }
    )

    assert message_text(message) == "a"
