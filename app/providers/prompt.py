"""One prompt string from a conversation, for upstreams that take a single prompt."""

from __future__ import annotations

from app.wire.schemas import (
    AssistantMessage,
    ChatCompletionRequest,
    Message,
    SystemMessage,
    TextPart,
    ToolMessage,
)

_SPEAKERS = {"user": "User", "assistant": "Assistant", "tool": "Tool", "function": "Tool"}


def message_text(message: Message) -> str:
    """The text of a message; image and other non-text parts are left out."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content.strip()
    return "\n".join(p.text.strip() for p in content if isinstance(p, TextPart) and p.text.strip())


def flatten_conversation(request: ChatCompletionRequest) -> str:
    """System text first, then the earlier turns as `User:`/`Assistant:` lines, then the
    last user turn. A lone user message is passed as it is, with no labels."""
    system = [message_text(m) for m in request.messages if isinstance(m, SystemMessage)]
    turns = [m for m in request.messages if not isinstance(m, SystemMessage)]
    history, last = turns[:-1], (turns[-1] if turns else None)
    sections = [text for text in system if text]
    lines = [f"{_speaker(m)}: {text}" for m in history if (text := message_text(m))]
    if lines:
        sections.append("\n".join(lines))
    if last is not None:
        text = message_text(last)
        labelled = bool(sections) or last.role != "user"
        sections.append(f"{_speaker(last)}: {text}" if labelled else text)
    return "\n\n".join(section for section in sections if section)


def developer_as_system(messages: list[dict[str, object]]) -> list[dict[str, object]]:
    """Messages as sent upstream, with `developer` (newer clients' name for system
    instructions) renamed `system`, for upstreams that know only the older role."""
    return [{**m, "role": "system"} if m.get("role") == "developer" else m for m in messages]


def _speaker(message: Message) -> str:
    if isinstance(message, AssistantMessage | ToolMessage):
        return _SPEAKERS[message.role]
    return _SPEAKERS.get(message.role, "User")
