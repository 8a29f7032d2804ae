"""A streamed chat answer as the Responses API's event sequence, in OpenAI's order."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import orjson

from app.config import ResponsesConfig
from app.errors import GatewayError, InternalError, UpstreamError
from app.responses.ids import new_id
from app.responses.payload import (
    ResponseData,
    call_item,
    failed_data,
    finished_data,
    message_item,
    started_data,
    text_part,
)
from app.responses.schemas import ResponsesRequest
from app.wire.schemas import ChatCompletionChunk, CompletionUsage
from app.wire.sse import encode_named_event

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResponseEvent:
    """One stream event: its `type` names it, and `data` is its JSON, made when the event is,
    so that it says what was true then (the objects it shows go on changing)."""

    type: str
    sequence_number: int
    data: bytes


def encode(event: ResponseEvent) -> bytes:
    """The event as SSE: an `event:` line naming its type, then its JSON."""
    return encode_named_event(event.type, event.data)


class ResponseStream:
    """Turns one answer's chat chunks (the role chunk first, content and tool-call deltas, the
    finish chunk, the usage chunk) into Responses events; iterate `batches()`, the events
    that are ready together (a stream writes each batch at once).

    A failure before the first event is raised from it, so that it can still be an HTTP
    status; after it, a `GatewayError` becomes an `error` event and `response.failed`. So
    does a failure while waiting for the first chunk when the response's head has gone out
    already (`head_sent`: the upstream was slow to start). Once the events have ended,
    `response` is the final object (completed, incomplete or failed).
    """

    def __init__(
        self,
        request: ResponsesRequest,
        chunks: AsyncIterator[ChatCompletionChunk],
        *,
        response_id: str | None = None,
        created_at: int | None = None,
        limits: ResponsesConfig | None = None,
        head_sent: bool = False,
    ) -> None:
        self._head_sent = head_sent
        self.response: ResponseData = started_data(
            request, response_id=response_id, created_at=created_at
        )
        self.error: GatewayError | None = None  # what ended the stream after its first byte
        self._limits = limits or ResponsesConfig()
        self._chars = 0
        self._chunks = chunks
        self._sequence = 0
        self._output: list[ResponseData] = []
        self._message: ResponseData | None = None
        self._text: list[str] = []
        self._calls: dict[int, tuple[ResponseData, list[str]]] = {}
        self._finish_reason: str | None = None
        self._usage: CompletionUsage | None = None
        self._x_gateway: object = None

    async def batches(self) -> AsyncGenerator[list[ResponseEvent]]:
        """The opening events with what the first chunk makes, then what each chunk makes,
        then the closing events."""
        try:
            first = await anext(self._chunks, None)
        except Exception as exc:
            await self._close_chunks()
            if not self._head_sent:
                raise
            opening = [self._lifecycle("response.created"), self._lifecycle("response.in_progress")]
            yield opening + self._fail(exc)
            return
        except BaseException:
            await self._close_chunks()
            raise
        pending = [self._lifecycle("response.created"), self._lifecycle("response.in_progress")]
        try:
            if first is not None:
                pending = pending + self._take(first)
            yield pending
            pending = []
            async for chunk in self._chunks:
                events = self._take(chunk)
                if events:
                    yield events
        except Exception as exc:
            yield pending + self._fail(exc)
            return
        finally:
            await self._close_chunks()
        closing = self._close_items()
        self.response = finished_data(
            self.response, self._output, self._finish_reason, self._usage, self._x_gateway
        )
        ending = "incomplete" if self.response["status"] == "incomplete" else "completed"
        yield [*closing, self._lifecycle(f"response.{ending}")]

    async def _close_chunks(self) -> None:
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()

    def _event(self, type_: str, **fields: object) -> ResponseEvent:
        # Serialised right away, from values this class made itself: nothing to validate or
        # copy, on every delta.
        number = self._sequence
        self._sequence += 1
        event = {"type": type_, "sequence_number": number, **fields}
        return ResponseEvent(type_, number, orjson.dumps(event))

    def _lifecycle(self, type_: str) -> ResponseEvent:
        return self._event(type_, response=self.response)

    def _take(self, chunk: ChatCompletionChunk) -> list[ResponseEvent]:
        if chunk.usage is not None:
            self._usage = chunk.usage
        x_gateway = (chunk.model_extra or {}).get("x_gateway")
        if x_gateway is not None:
            self._x_gateway = x_gateway
        events: list[ResponseEvent] = []
        for choice in chunk.choices:
            if choice.index != 0:  # a Responses answer has one choice
                continue
            if choice.delta.content:
                events += self._add_text(choice.delta.content)
            calls = (choice.delta.model_extra or {}).get("tool_calls")
            for call in calls if isinstance(calls, list) else []:
                if isinstance(call, dict):
                    events += self._add_call_delta(call)
            if choice.finish_reason:
                self._finish_reason = choice.finish_reason
        return events

    def _add_text(self, piece: str) -> list[ResponseEvent]:
        events = []
        if self._message is None:
            events += self._open_message()
        assert self._message is not None
        self._gathered(len(piece))
        self._text.append(piece)
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=self._message["id"],
                output_index=self._output.index(self._message),
                content_index=0,
                delta=piece,
                logprobs=[],
            )
        )
        return events

    def _open_message(self) -> list[ResponseEvent]:
        message = message_item("in_progress", [])
        self._message, self._text = message, []
        self._output.append(message)
        index = len(self._output) - 1
        return [
            self._event("response.output_item.added", output_index=index, item=message),
            self._event(
                "response.content_part.added",
                item_id=message["id"],
                output_index=index,
                content_index=0,
                part=text_part(""),
            ),
        ]

    def _close_message(self) -> list[ResponseEvent]:
        message = self._message
        if message is None:
            return []
        self._message = None
        part = text_part("".join(self._text))
        message["content"] = [part]
        message["status"] = self._item_status
        index = self._output.index(message)
        where = {"item_id": message["id"], "output_index": index, "content_index": 0}
        return [
            self._event("response.output_text.done", **where, text=part["text"], logprobs=[]),
            self._event("response.content_part.done", **where, part=part),
            self._event("response.output_item.done", output_index=index, item=message),
        ]

    def _add_call_delta(self, call: dict[str, object]) -> list[ResponseEvent]:
        """One piece of a streamed tool call: its first piece opens a function_call item
        (and ends the message before it); its arguments stream as deltas."""
        position = call.get("index")
        index = position if isinstance(position, int) else 0
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        events = []
        if index not in self._calls:
            if len(self._output) >= self._limits.max_output_items:
                raise UpstreamError(
                    f"the upstream's answer has over {self._limits.max_output_items} output "
                    "items (responses.max_output_items)"
                )
            events += self._close_message()
            call_id = str(call.get("id") or new_id("call"))
            item = call_item(call_id, str(function.get("name") or ""), "", "in_progress")
            self._calls[index] = (item, [])
            self._output.append(item)
            events.append(
                self._event(
                    "response.output_item.added",
                    output_index=len(self._output) - 1,
                    item=item,
                )
            )
        item, pieces = self._calls[index]
        if not item["name"] and function.get("name"):
            item["name"] = str(function["name"])
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._gathered(len(arguments))
            pieces.append(arguments)
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=self._output.index(item),
                    delta=arguments,
                )
            )
        return events

    @property
    def _item_status(self) -> str:
        return "incomplete" if self._finish_reason in ("length", "content_filter") else "completed"

    def _close_items(self) -> list[ResponseEvent]:
        """The end of every open item, in output order; an answer with no output at all
        still gets its (empty) message."""
        if not self._output:
            events = self._open_message()
            return events + self._close_message()
        events = self._close_message()
        for item, pieces in self._calls.values():
            item["arguments"] = arguments = "".join(pieces)
            item["status"] = self._item_status
            index = self._output.index(item)
            where = {"item_id": item["id"], "output_index": index}
            events.append(
                self._event("response.function_call_arguments.done", **where, arguments=arguments)
            )
            events.append(self._event("response.output_item.done", output_index=index, item=item))
        return events

    def _gathered(self, chars: int) -> None:
        """Count what the answer holds so far: the stream keeps all of it for its end."""
        self._chars += chars
        if self._chars > self._limits.max_answer_chars:
            raise UpstreamError(
                f"the upstream's answer is over {self._limits.max_answer_chars} characters "
                "(responses.max_answer_chars)"
            )

    def _fail(self, exc: Exception) -> list[ResponseEvent]:
        if isinstance(exc, GatewayError):
            # Its message may quote what the upstream said, and so the prompt: at debug only.
            logger.warning("response stream failed after the first byte: %s", exc.code)
            logger.debug("response stream failed after the first byte: %s", exc.message)
            error = exc
        else:
            logger.exception("response stream failed after the first byte")
            error = InternalError("the gateway hit an unexpected error")
        if self._message is not None:
            self._message["content"] = [text_part("".join(self._text))]
        for item, pieces in self._calls.values():
            item["arguments"] = "".join(pieces)
        self.error = error
        self.response = failed_data(self.response, self._output, error)
        return [
            self._event("error", code=error.code, message=error.message, param=error.param),
            self._lifecycle("response.failed"),
        ]
