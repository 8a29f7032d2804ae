"""The spans the tracing seams hand out while traces are on (`app/observe/tracing.py`): each
current while its work runs, ended when it is done, marked failed by the error that ended it."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any, Self, TypeVar

from opentelemetry import context, trace
from opentelemetry.trace import Span, StatusCode

from app.errors import GatewayError

T = TypeVar("T")


def failed(span: Span, error: BaseException) -> None:
    """Mark `span` as ended by `error`: the gateway's code for it, and its message."""
    if isinstance(error, GatewayError):
        span.set_attribute("error.type", error.code or type(error).__name__)
        span.set_status(StatusCode.ERROR, error.message)
    else:
        span.set_attribute("error.type", type(error).__name__)
        span.set_status(StatusCode.ERROR)


class Step:
    """A span current for the duration of a `with` block; a piece of work has nothing to
    `follow` (it is done when the block is)."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self._token: object = None

    def __enter__(self) -> Self:
        self._token = context.attach(trace.set_span_in_context(self.span))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None
    ) -> None:
        context.detach(self._token)  # type: ignore[arg-type]
        if error is not None:
            failed(self.span, error)
        self._finish(error)

    def _finish(self, error: BaseException | None) -> None:  # noqa: ARG002
        self.span.end()

    def set(self, key: str, value: Any) -> None:
        self.span.set_attribute(key, value)

    def follow(self, chunks: AsyncGenerator[T]) -> AsyncGenerator[T]:
        return chunks


class Upstream(Step):
    """An upstream attempt: a `with` block, and for a stream, the reading of the rest of it
    (`follow`), which ends the span."""

    _followed = False

    def _finish(self, error: BaseException | None) -> None:
        if error is not None or not self._followed:
            self.span.end()

    def follow(self, chunks: AsyncGenerator[T]) -> AsyncGenerator[T]:
        self._followed = True
        return Followed(chunks, self.span)


class Followed(AsyncGenerator[T]):
    """`chunks` read with `span` current (what runs to produce each chunk, job polls say,
    belongs to it); `span` ends with them."""

    def __init__(self, chunks: AsyncGenerator[T], span: Span) -> None:
        self._chunks = chunks
        self._span = span
        self._context = trace.set_span_in_context(span)
        self._ended = False

    async def asend(self, value: None) -> T:
        token = context.attach(self._context)
        try:
            return await self._chunks.asend(value)
        except StopAsyncIteration:
            self._end()
            raise
        except BaseException as error:
            failed(self._span, error)
            self._end()
            raise
        finally:
            context.detach(token)

    async def athrow(self, *args: Any) -> T:
        return await self._chunks.athrow(*args)

    async def aclose(self) -> None:
        try:
            await self._chunks.aclose()
        finally:
            self._end()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._span.end()
