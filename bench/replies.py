"""What the mock upstream answers: reply shapes from model names, canned JSON and SSE frames."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import orjson

DEFAULT_CHUNKS = 8
TOKEN = "tok "
_SHAPE = re.compile(r"(\d+)x(\d+(?:\.\d+)?)ms$")
_JSON_HEADERS = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
_SSE_HEADERS = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_LAST_CHUNK = b"0\r\n\r\n"
LARGE_BODY = 256 * 1024
_END = 16 * 1024
_MODEL_FIELD = re.compile(rb'"model"\s*:\s*"([^"\\]*)"')
_STREAM_FIELD = re.compile(rb'"stream"\s*:\s*true')
_USAGE_FIELD = re.compile(rb'"include_usage"\s*:\s*true')


@dataclass(frozen=True)
class Shape:
    """How many content tokens a reply has and how far apart they are streamed."""

    chunks: int
    delay_s: float


def shape_of(model: str) -> Shape:
    """The reply shape a model name asks for; plain names get `DEFAULT_CHUNKS` at once."""
    match = _SHAPE.search(model)
    if match is None:
        return Shape(DEFAULT_CHUNKS, 0.0)
    return Shape(max(1, int(match.group(1))), float(match.group(2)) / 1000)


def json_response(status: int, payload: object) -> bytes:
    body = orjson.dumps(payload)
    reason = b"OK" if status == 200 else b"Error"
    return _JSON_HEADERS % (status, reason, len(body)) + body


def error_response(status: int, message: str) -> bytes:
    return json_response(
        status,
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
    )


@cache
def completion_reply(model: str) -> bytes:
    """A whole `chat.completion` response, headers included."""
    chunks = shape_of(model).chunks
    return json_response(
        200,
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": TOKEN * chunks},
                }
            ],
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": chunks,
                "total_tokens": 12 + chunks,
            },
        },
    )


def _frame(payload: object) -> bytes:
    event = b"data: " + (payload if isinstance(payload, bytes) else orjson.dumps(payload)) + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(event), event)


def _chunk(model: str, delta: dict[str, str], finish: str | None = None) -> bytes:
    return _frame(
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
    )


@dataclass(frozen=True)
class StreamFrames:
    """The chunked-encoding frames of one streamed reply, built once per model."""

    head: bytes
    token: bytes
    tail: bytes


@cache
def stream_frames(model: str, include_usage: bool) -> StreamFrames:
    chunks = shape_of(model).chunks
    tail = _chunk(model, {}, "stop")
    if include_usage:
        tail += _frame(
            {
                "id": "chatcmpl-mock",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": 12,
                    "completion_tokens": chunks,
                    "total_tokens": 12 + chunks,
                },
            }
        )
    head = _SSE_HEADERS + _chunk(model, {"role": "assistant", "content": ""})
    tail += _frame(b"[DONE]") + _LAST_CHUNK
    return StreamFrames(head, _chunk(model, {"content": TOKEN}), tail)


def _ends(parts: list[bytes]) -> bytes:
    head = b"".join(parts[: _parts_for(parts)])[:_END]
    tail = b"".join(parts[-_parts_for(parts[::-1]) :])[-_END:]
    return head + b"\n" + tail


def _parts_for(parts: list[bytes]) -> int:
    """How many leading parts it takes to hold `_END` bytes."""
    size = 0
    for count, part in enumerate(parts, 1):
        size += len(part)
        if size >= _END:
            return count
    return len(parts)


def request_fields(parts: list[bytes]) -> tuple[str, bool, bool] | None:
    """The model, whether to stream and whether to add usage; None without a model.

    A large body is mostly one image. Joining and parsing megabytes of JSON would make the mock
    cost as much as the gateway it measures, so only the body's two ends, where these fields
    are, get searched.
    """
    if sum(map(len, parts)) > LARGE_BODY:
        ends = _ends(parts)
        model = _MODEL_FIELD.search(ends)
        if model is not None:
            stream, usage = _STREAM_FIELD.search(ends), _USAGE_FIELD.search(ends)
            return model.group(1).decode(), stream is not None, usage is not None
    try:
        request = orjson.loads(b"".join(parts))
        model_name = request["model"]
        options = request.get("stream_options") or {}
        return str(model_name), bool(request.get("stream")), bool(options.get("include_usage"))
    except (orjson.JSONDecodeError, LookupError, TypeError, AttributeError):
        return None
