"""Whether a target answered a scenario's check request right: chat, Responses or a stream."""

from __future__ import annotations

import orjson

from bench.client import Exchange
from bench.framing import Framing
from bench.scenarios import Scenario


def problem_with(scenario: Scenario, exchange: Exchange, framing: Framing) -> str | None:
    """What is wrong with a target's answer to `scenario`'s request, or None."""
    if exchange.status != 200:
        return f"HTTP {exchange.status}"
    if exchange.error is not None:
        return exchange.error
    if scenario.stream:
        if exchange.tokens != scenario.chunks:
            return f"{exchange.tokens} content chunks, not {scenario.chunks}"
        return None
    if framing == "responses":
        return _response_problem(exchange.body)
    try:
        reply = orjson.loads(exchange.body)
        content = reply["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, LookupError, TypeError):
        return "not a chat.completion"
    return None if reply.get("object") == "chat.completion" and content else "no content"


def _response_problem(body: bytes | bytearray) -> str | None:
    """What is wrong with a Responses API answer: it must be a completed `response` whose
    message holds output text."""
    try:
        reply = orjson.loads(body)
        parts = [part for item in reply["output"] for part in item.get("content") or ()]
        texts = [part["text"] for part in parts if part.get("type") == "output_text"]
    except (orjson.JSONDecodeError, LookupError, TypeError, AttributeError):
        return "not a response"
    if reply.get("object") != "response" or reply.get("status") != "completed":
        return f"not a completed response (status {reply.get('status')!r})"
    return None if any(texts) else "no output text"
