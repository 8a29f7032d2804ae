"""The response cache: answers kept in the state backend under what the upstream would be sent,
every image as the hash of its bytes, and given again to the same request.

A request is keyed once its images are ready for the deployment it goes to: the deployment,
the model it asks the upstream for, the gateway key (unless the entry shares its answers), and
the request as the upstream would get it, minus what doesn't change the answer (`stream`,
`user`, `metadata`), each image and document page replaced by the SHA-256 of its bytes (an
image URL the upstream would fetch itself is fetched to be hashed, and its hash remembered for
a while; or keyed on the URL, with `url_images: by_url`). The same picture as a data URI
spelled any way, or behind a URL, is then one key.

While a miss is being answered, the same key's other requests wait for its answer instead of
asking the upstream too (across workers and replicas when the state is in Redis); if it fails,
one of them asks in turn. Only whole answers are kept: an upstream failure or a stream that
broke off leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import httpx
import orjson

from app.config import CacheConfig, EntryCache
from app.errors import GatewayError
from app.images import PreparedImage
from app.images.fetch import ImageFetcher
from app.observe.metrics import Metrics
from app.observe.record import current_record
from app.providers.base import Call, chunks_from_completion
from app.server.threads import WorkerThreads
from app.service.routing import Attempt
from app.state import Quota, StateBackend
from app.wire.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    Choice,
    CompletionUsage,
)

logger = logging.getLogger(__name__)

Result = Literal["hit", "miss", "bypass"]
# Request fields that don't change the answer: one answer serves both modes, any user.
_NOT_KEYED = {"stream", "stream_options", "user", "metadata"}
# How often a request waiting for another's answer looks for it in a shared backend.
WAIT_POLL_S = 0.05
# How rarely the cache says it is skipped while the shared state is unreachable.
DOWN_LOG_EVERY_S = 60.0
# Larger keyed content is hashed on a worker thread, where the event loop would wait for it.
HASH_ON_LOOP_BYTES = 256 * 1024
# How long requests waiting for an answer that was not kept may still learn so.
DONE_MARK_S = 2.0
_VERSION = 1


@dataclass(frozen=True)
class CacheControl:
    """What a request asks of the cache (its `Cache-Control` header), and whose it is."""

    owner: str
    look_up: bool = True  # `no-cache`: ask the upstream, and keep its answer
    store: bool = True  # `no-store`: neither look up nor keep

    @classmethod
    def of(cls, header: str | None, owner: str) -> CacheControl:
        directives = {part.strip().lower() for part in (header or "").split(",")}
        if "no-store" in directives:
            return cls(owner, look_up=False, store=False)
        return cls(owner, look_up="no-cache" not in directives)


@dataclass
class Entry:
    """A kept answer, as stored: the completion, and what it cost to get."""

    completion: ChatCompletion
    upstream_s: float
    credits: float

    def dumps(self) -> str:
        meta = orjson.dumps({"v": _VERSION, "upstream_s": self.upstream_s, "credits": self.credits})
        return meta.decode() + "\n" + self.completion.model_dump_json()

    @classmethod
    def loads(cls, text: str) -> Entry | None:
        head, _, body = text.partition("\n")
        try:
            meta = orjson.loads(head)
            if meta.get("v") != _VERSION:
                return None
            completion = ChatCompletion.model_validate_json(body)
        except ValueError:
            return None
        return cls(completion, float(meta["upstream_s"]), float(meta["credits"]))


class ResponseCache:
    def __init__(
        self,
        config: CacheConfig,
        state: StateBackend,
        fetcher: ImageFetcher,
        metrics: Metrics | None = None,
    ) -> None:
        self._config = config
        self._state = state
        self._fetcher = fetcher
        self._metrics = metrics or Metrics()
        self._quota = Quota("response-cache", config.max_bytes)
        self._in_flight: dict[str, asyncio.Future[Waited]] = {}
        self._down_logged = float("-inf")
        self._hashing = WorkerThreads(1)  # a fetched image's megabytes, off the event loop

    def plan(self, call: Call, attempt: Attempt, control: CacheControl | None) -> Plan | None:
        """How `call` goes through the cache, or None when its deployment keeps no answers
        (then the response says nothing of the cache)."""
        settings = attempt.deployment.entry.cache
        if settings is None or control is None:
            return None
        request = call.request
        repeatable = request.temperature in (None, 0) and request.choice_count == 1
        cached = control.store and (repeatable or settings.when == "always")
        if cached and self._unreachable():  # asked upstream as if it had missed
            return Plan(self, settings, call, attempt, control, "miss", active=False)
        return Plan(self, settings, call, attempt, control, "miss" if cached else "bypass", cached)

    def _unreachable(self) -> bool:
        """Whether the shared state is down: the cache is skipped meanwhile, never an error."""
        if not getattr(self._state, "degraded", False):
            return False
        now = time.monotonic()
        if now - self._down_logged >= DOWN_LOG_EVERY_S:
            self._down_logged = now
            logger.warning("the response cache is skipped while the shared state is unreachable")
        return True

    async def key(self, plan: Plan) -> str:
        call, settings = plan.call, plan.settings
        request = call.request.model_dump(mode="json", exclude_none=True, exclude=_NOT_KEYED)
        images = iter(call.images)
        for message in request["messages"]:
            content = message.get("content")
            for part in content if isinstance(content, list) else ():
                if part.get("type") == "image_url":
                    part["image_url"]["url"] = await self._image_key(next(images), settings)
                elif part.get("type") == "file":
                    data = str(part["file"].get("file_data", ""))
                    uri = call.inline.get(data) if call.inline else None  # a PDF passed on
                    pieces = (data,) if uri is None else (uri.header, uri.payload)
                    part["file"] = {"sha256": await self._digest(*pieces)}
        owner = "*" if settings.shared else plan.control.owner
        keyed = {
            "deployment": plan.attempt.deployment.id,
            "upstream_model": call.upstream_model,
            "owner": owner,
            "request": request,
        }
        return hashlib.sha256(orjson.dumps(keyed, option=orjson.OPT_SORT_KEYS)).hexdigest()

    async def _image_key(self, image: PreparedImage, settings: EntryCache) -> str:
        if image.image is not None:
            return "sha256:" + image.image.sha256
        url = str(httpx.URL(image.url))  # a URL passed on as it is: normalised
        if settings.url_images == "by_url":
            return "url:" + url
        memo = f"cache-url:{hashlib.sha256(url.encode()).hexdigest()}"
        known = await self._state.get(memo)
        if known is not None:
            return "sha256:" + known
        try:
            data = await self._fetcher.fetch(image.url, image.param)
        except GatewayError:
            # The upstream fetches it, perhaps from where the gateway may not: keyed on its URL.
            return "url:" + url
        digest = await self._digest(data)
        if self._config.url_memo_s > 0:
            await self._state.set(memo, digest, self._config.url_memo_s)
        return "sha256:" + digest

    async def _digest(self, *pieces: str | bytes | memoryview) -> str:
        """The SHA-256 of `pieces` one after another (strings as UTF-8), on a worker thread
        once they are large: a PDF's data URI, a fetched image."""

        def digest() -> str:
            hashed = hashlib.sha256()
            for piece in pieces:
                hashed.update(piece.encode() if isinstance(piece, str) else piece)
            return hashed.hexdigest()

        if sum(len(piece) for piece in pieces) <= HASH_ON_LOOP_BYTES:
            return digest()
        return await self._hashing.run(digest)

    async def get(self, key: str) -> Entry | None:
        text = await self._state.get("cache:" + key)
        return Entry.loads(text) if text is not None else None

    async def put(self, key: str, entry: Entry, settings: EntryCache) -> bool:
        text = entry.dumps()
        if len(text) > settings.max_entry_bytes or self._unreachable():
            return False
        kept = await self._state.set_counted("cache:" + key, text, settings.ttl_s, [self._quota])
        self._metrics.cache_bytes.set(await self._state.counted_bytes(self._quota))
        return kept

    def counted(self, plan: Plan, entry: Entry | None) -> None:
        """The request's outcome in its record and the metrics; for a hit, what it saved."""
        record = current_record()
        record.cache = plan.result
        model = record.model_label
        self._metrics.child(self._metrics.cache_requests, model, plan.result).inc()
        if plan.result == "hit" and entry is not None:
            self._metrics.child(self._metrics.cache_upstream_saved, model).inc(entry.upstream_s)
            if entry.credits:
                self._metrics.child(self._metrics.cache_credits_saved, model).inc(entry.credits)


# What a request that waited for an identical one learns: its kept answer, that it ended
# without one to keep (each waiter asks for itself), or that it failed (one of them leads).
Waited = Entry | Literal["unkept", "failed"]


@dataclass
class Plan:
    """One request's way through the cache, for the deployment it is tried on."""

    cache: ResponseCache
    settings: EntryCache
    call: Call
    attempt: Attempt
    control: CacheControl
    result: Result
    active: bool  # looked up (unless `no-cache`) and stored; else straight to the upstream
    key: str = ""
    leader: bool = field(default=False, init=False)
    _let_go: asyncio.TimerHandle | None = field(default=None, init=False, repr=False)
    _future: asyncio.Future[Waited] | None = field(default=None, init=False, repr=False)

    async def complete(self, ask: Callable[[], Awaitable[ChatCompletion]]) -> ChatCompletion:
        """The answer: kept, or asked for (once among identical requests) and kept."""
        found = await self._kept_or_ask()
        if found is not None:
            return found
        started = time.monotonic()
        try:
            completion = await ask()
        except BaseException:
            await self._release(None, failed=True)
            raise
        entry = Entry(completion, time.monotonic() - started, _credits(completion))
        whole = _whole(completion)
        await self._release(entry if whole else None, failed=not whole)
        return completion

    async def stream(
        self, ask: Callable[[], Awaitable[AsyncGenerator[ChatCompletionChunk]]], model: str
    ) -> AsyncGenerator[ChatCompletionChunk]:
        """The chunks: a kept answer replayed, or the upstream's, recorded as they pass."""
        found = await self._kept_or_ask()
        if found is not None:
            return _replay(found, model)
        started = time.monotonic()
        try:
            chunks = await ask()
        except BaseException:
            await self._release(None, failed=True)
            raise
        return self._recording(chunks, started) if self.leader else chunks

    async def _kept_or_ask(self) -> ChatCompletion | None:
        """A kept answer (with its own `id` and `created`), waiting for one being made; or
        None: ask the upstream (as the one identical requests wait for, when `leader`)."""
        cache = self.cache
        if not self.active:
            cache.counted(self, None)
            return None
        self.key = await cache.key(self)
        while True:
            if self.control.look_up:
                entry = await cache.get(self.key)
                if entry is not None:
                    return self._hit(entry)
            if await self._lead():
                cache.counted(self, None)
                return None
            waited = await self._wait()
            if isinstance(waited, Entry):
                return self._hit(waited)
            if waited == "unkept":
                cache.counted(self, None)
                return None

    def _hit(self, entry: Entry) -> ChatCompletion:
        self.result = "hit"
        self.cache.counted(self, entry)
        return _fresh(entry.completion)

    async def _lead(self) -> bool:
        """Whether this request asks the upstream for the others: none identical is being
        answered (here, or by another process that shares the state)."""
        cache, key = self.cache, self.key
        if key in cache._in_flight:
            return False
        timeout_s = self.attempt.deployment.entry.timeout_s
        flight = await cache._state.hit("cache-flight:" + key, timeout_s)
        if flight.count > 1:
            return False
        loop = asyncio.get_running_loop()
        future = cache._in_flight[key] = loop.create_future()
        # Should this request never say how it ended (cancelled before its stream began),
        # its waiters here are let go when its deadline has passed.
        self._let_go = loop.call_later(timeout_s, _let_go, cache._in_flight, key, future)
        self._future = future
        self.leader = True
        await cache._state.set("cache-lead:" + key, "1", timeout_s)
        return True

    async def _wait(self) -> Waited:
        """What the identical request being answered ends with."""
        local = self.cache._in_flight.get(self.key)
        if local is not None:
            return await asyncio.shield(local)
        state = self.cache._state
        while True:
            await asyncio.sleep(WAIT_POLL_S)
            text = await state.get("cache:" + self.key)
            if text is not None:
                return Entry.loads(text) or "failed"
            if await state.get("cache-lead:" + self.key) is None:
                done = await state.get("cache-done:" + self.key)
                return "unkept" if done is not None else "failed"

    async def _release(self, entry: Entry | None, *, failed: bool) -> None:
        """Keep `entry` (when there is one to keep), and let the waiters go."""
        if not self.leader:
            return
        self.leader = False
        if self._let_go is not None:
            self._let_go.cancel()
        cache, key, future = self.cache, self.key, self._future
        if future is not None and cache._in_flight.get(key) is future:
            del cache._in_flight[key]
        kept = False
        try:
            if entry is not None and self.control.store:
                kept = await cache.put(key, entry, self.settings)
            if not (kept or failed):
                await cache._state.set("cache-done:" + key, "1", DONE_MARK_S)
            await cache._state.delete("cache-lead:" + key)
            await cache._state.delete("cache-flight:" + key)
        finally:
            if future is not None and not future.done():
                outcome: Waited = entry if kept and entry else "failed" if failed else "unkept"
                future.set_result(outcome)

    async def _recording(
        self, chunks: AsyncGenerator[ChatCompletionChunk], started: float
    ) -> AsyncGenerator[ChatCompletionChunk]:
        recorder = Recorder()
        entry: Entry | None = None
        try:
            async for chunk in chunks:
                recorder.add(chunk)
                yield chunk
            completion = recorder.completion()
            if completion is not None:
                entry = Entry(completion, time.monotonic() - started, _credits(completion))
        finally:
            await chunks.aclose()
            await self._release(entry, failed=entry is None)


class Recorder:
    """A stream's chunks, put together as the whole answer they make."""

    def __init__(self) -> None:
        self._first: ChatCompletionChunk | None = None
        self._texts: dict[int, list[str]] = {}
        self._calls: dict[int, dict[int, dict[str, object]]] = {}
        self._finish: dict[int, str] = {}
        self._usage: CompletionUsage | None = None
        self._facts: object = None

    def add(self, chunk: ChatCompletionChunk) -> None:
        self._first = self._first or chunk
        if chunk.usage is not None:
            self._usage = chunk.usage
        facts = (chunk.model_extra or {}).get("x_gateway")
        if facts is not None:
            self._facts = facts
        for choice in chunk.choices:
            index = choice.index
            self._texts.setdefault(index, [])
            if choice.delta.content:
                self._texts[index].append(choice.delta.content)
            calls = (choice.delta.model_extra or {}).get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                if isinstance(call, dict):
                    self._add_call(index, call)
            if choice.finish_reason:
                self._finish[index] = choice.finish_reason

    def _add_call(self, index: int, delta: dict[str, object]) -> None:
        position = delta.get("index", 0)
        calls = self._calls.setdefault(index, {})
        call = calls.setdefault(int(position) if isinstance(position, int) else 0, {})
        for name in ("id", "type"):
            if delta.get(name):
                call[name] = delta[name]
        function = delta.get("function")
        if isinstance(function, dict):
            known = call.setdefault("function", {"name": "", "arguments": ""})
            assert isinstance(known, dict)
            known["name"] = str(known["name"]) + str(function.get("name") or "")
            known["arguments"] = str(known["arguments"]) + str(function.get("arguments") or "")

    def completion(self) -> ChatCompletion | None:
        """The answer, when every choice got to its end; None for one that broke off."""
        if self._first is None or not self._texts or set(self._texts) != set(self._finish):
            return None
        choices = []
        for index in sorted(self._texts):
            message = ChatCompletionMessage(content="".join(self._texts[index]) or None)
            calls = self._calls.get(index)
            if calls:
                setattr(message, "tool_calls", [calls[k] for k in sorted(calls)])  # noqa: B010
            choices.append(Choice(index=index, message=message, finish_reason=self._finish[index]))
        completion = ChatCompletion(
            model=self._first.model, choices=choices, usage=self._usage or CompletionUsage()
        )
        if self._facts is not None:
            setattr(completion, "x_gateway", self._facts)  # noqa: B010 (an extra field)
        return completion


def _let_go(
    in_flight: dict[str, asyncio.Future[Waited]], key: str, future: asyncio.Future[Waited]
) -> None:
    if in_flight.get(key) is future:
        del in_flight[key]
    if not future.done():
        future.set_result("failed")


def _fresh(completion: ChatCompletion) -> ChatCompletion:
    """A kept answer as a new one: the same content, its own `id` and `created`."""
    fresh = ChatCompletion(model=completion.model, choices=[])
    return completion.model_copy(update={"id": fresh.id, "created": fresh.created})


async def _replay(completion: ChatCompletion, model: str) -> AsyncGenerator[ChatCompletionChunk]:
    completion.model = model
    for chunk in chunks_from_completion(completion):
        yield chunk


def _whole(completion: ChatCompletion) -> bool:
    return bool(completion.choices) and all(c.finish_reason for c in completion.choices)


def _credits(completion: ChatCompletion) -> float:
    facts = (completion.model_extra or {}).get("x_gateway")
    spent = facts.get("credits_used") if isinstance(facts, dict) else None
    return float(spent) if isinstance(spent, int | float) and spent > 0 else 0.0
