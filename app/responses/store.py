"""Stored responses in the state backend, so any worker or replica can continue or show them.

One entry per response holds its object, its input items and its conversation as chat
messages; each data-URI image is kept once under its content hash and referenced from there,
and each output item once more under its id (`item_reference`, app/responses/references.py).
Everything counts against `responses.max_bytes`, and against the share of it each gateway key
may hold (`max_bytes_per_key`): one key filling the store can't keep the others' responses
out. Each key pays for the images its responses carry, once however many carry them. A
response that does not fit is not stored (the answer is still served, and a warning logged)
until older ones expire.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import logging
import os
from collections.abc import Sequence

import orjson
import pybase64

from app.config import ResponsesConfig
from app.errors import ResponseNotFound
from app.observe.metrics import Metrics
from app.responses.items import DEFAULT_PAGE, input_items, page
from app.responses.objects import DeletedResponse
from app.responses.payload import ResponseData, answer_message
from app.responses.references import OutputItems
from app.responses.schemas import ResponsesRequest
from app.responses.translate import ChatMessage, input_messages
from app.server.threads import WorkerThreads
from app.state import Quota, StateBackend
from app.wire.hashed import HashedURI

logger = logging.getLogger(__name__)

IMAGE_MARK = "$vg_image"  # {IMAGE_MARK: sha256} stands for a data URI kept once
IMAGE_GRACE_S = 60.0  # an image outlives the responses that refer to it by this much
TRANSFERS = 4  # records and images on their way to or from the backend at once, per process
OFF_LOOP_CHARS = 256 * 1024  # a stored record this long is parsed on a worker thread
_OWNER_FIELD = '{"owner":'


class ResponseStore:
    """Save, read, continue and delete responses; each key (`owner`) sees only its own."""

    def __init__(
        self,
        state: StateBackend,
        config: ResponsesConfig,
        *,
        keyed: bool = True,
        metrics: Metrics | None = None,
    ) -> None:
        self._state = state
        self._metrics = metrics or Metrics()
        self._ttl_s = config.ttl_s
        self._quota = Quota("responses", config.max_bytes)
        share = config.max_bytes_per_key
        if share is None:
            share = config.max_bytes // 4 if keyed else config.max_bytes
        self._share_bytes = share
        self._max_record_bytes = config.max_record_bytes
        # Records and images move to and from the state backend a few at a time: a burst of
        # them would queue megabytes in Redis ahead of every other process's small calls.
        self._transfers = asyncio.Semaphore(TRANSFERS)
        # Encoding a record hashes its images, which lets the GIL go: as many records at once
        # as asyncio's default executor has threads (min(32, CPUs + 4)).
        self._encoding = WorkerThreads(min(32, (os.cpu_count() or 1) + 4))
        self._items = OutputItems(state, config.ttl_s)

    def _quotas(self, owner: str) -> tuple[Quota, Quota]:
        """The store's quota and `owner`'s share of it (named by a digest: owners are key
        names, which may hold any character)."""
        name = hashlib.sha256(owner.encode()).hexdigest()[:24]
        return self._quota, Quota(f"responses:key:{name}", self._share_bytes)

    async def save(
        self,
        request: ResponsesRequest,
        response: ResponseData,
        *,
        owner: str,
        history: Sequence[ChatMessage] = (),
        turn: Sequence[ChatMessage] | None = None,
        response_json: bytes | None = None,
    ) -> bool:
        """Keep a finished response (its JSON data) with its input, and the
        conversation so far (`history`, the previous response's, then this turn's input and
        output). False when nothing was kept: `store: false`, `ttl_s: 0`, or the byte cap.
        `turn` is `input_messages(request)` and `response_json` the response as the client
        got it, when the caller has them."""
        if self._ttl_s <= 0 or not request.stores:
            return False
        response_id, answer = str(response["id"]), answer_message(response)
        response_json = response_json or orjson.dumps(response)
        conversation = [*history, *(input_messages(request) if turn is None else turn)]
        if answer is not None:
            conversation.append(answer)
        record: dict[str, object] = {
            # The owner first: another key's read is refused before the record is parsed.
            "owner": owner,
            # The response goes in as the client got it: serialised once, not once more here.
            "response": orjson.Fragment(response_json),
            "input_items": input_items(request),
            "conversation": conversation,
        }
        images: dict[str, str] = {}
        data = orjson.dumps(record)
        # Only a record that carries data URIs needs them replaced by marks; hashing images
        # takes a while, so that is done off the loop.
        if b'"data:' in data:
            data = await self._encoding.run(lambda: _encode_record(record, images))
        text = data.decode()
        if max(len(data), *map(len, images.values()), 0) > self._max_record_bytes:
            return self._too_large(response_id, owner)
        quotas = self._quotas(owner)
        for digest, uri in images.items():
            if not await self._keep_image(digest, uri, quotas):
                return self._refused(response_id, owner)
        async with self._transfers:
            stored = await self._state.set_counted(
                _response_key(response_id), text, self._ttl_s, quotas
            )
        if stored and not await self._items.keep(response, owner, quotas):
            logger.warning(
                "stored responses are at responses.max_bytes or the share of it of key %s; "
                "output items of response %s can't be referenced",
                owner,
                response_id,
            )
        return stored or self._refused(response_id, owner)

    def _refused(self, response_id: str, owner: str) -> bool:
        logger.warning(
            "stored responses are at responses.max_bytes or the share of it of key %s "
            "(max_bytes_per_key); response %s is not stored",
            owner,
            response_id,
        )
        self._metrics.child(self._metrics.responses_not_stored, owner, "full").inc()
        return False

    def _too_large(self, response_id: str, owner: str) -> bool:
        logger.warning(
            "response %s of key %s, or an image it carries, is over responses.max_record_bytes "
            "(%d): it is not stored",
            response_id,
            owner,
            self._max_record_bytes,
        )
        self._metrics.child(self._metrics.responses_not_stored, owner, "too_large").inc()
        return False

    async def _keep_image(self, digest: str, uri: str, quotas: tuple[Quota, Quota]) -> bool:
        key, ttl_s = _image_key(digest), self._ttl_s + IMAGE_GRACE_S
        if await self._state.extend_counted(key, ttl_s, quotas):
            return True
        async with self._transfers:
            return await self._state.set_counted(key, uri, ttl_s, quotas)

    async def get(self, response_id: str, *, owner: str) -> dict[str, object]:
        """The stored `response` object."""
        record = await self._record(response_id, owner)
        response = record.get("response")
        assert isinstance(response, dict)
        return response

    async def delete(self, response_id: str, *, owner: str) -> DeletedResponse:
        record = await self._record(response_id, owner)
        key, quotas = _response_key(response_id), self._quotas(owner)
        if not await self._state.delete_counted(key, quotas):
            raise _not_found(response_id, None)
        await self._items.forget(record.get("response"), quotas)
        return DeletedResponse(id=response_id)

    async def expand_references(self, request: ResponsesRequest, *, owner: str) -> None:
        """Each `item_reference` in the request's input replaced by the stored output item
        it names (404 `item_not_found` naming it otherwise)."""
        await self._items.expand(request, owner)

    async def conversation(self, previous_response_id: str, *, owner: str) -> list[ChatMessage]:
        """The conversation a request's `previous_response_id` continues, images restored."""
        param = "previous_response_id"
        record = await self._record(previous_response_id, owner, param)
        messages = await self._restore(record.get("conversation"), previous_response_id, param)
        assert isinstance(messages, list)
        return messages

    async def list_input_items(
        self,
        response_id: str,
        *,
        owner: str,
        order: str = "desc",
        limit: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> dict[str, object]:
        """One page of the response's input items, in OpenAI's list shape."""
        record = await self._record(response_id, owner)
        items = await self._restore(record.get("input_items"), response_id, None)
        assert isinstance(items, list)
        return page(items, order=order, limit=limit, after=after)

    async def _record(
        self, response_id: str, owner: str, param: str | None = None
    ) -> dict[str, object]:
        async with self._transfers:
            text = await self._state.get(_response_key(response_id))
        if text is None or not _may_be_owned_by(text, owner):
            raise _not_found(response_id, param)
        # A long conversation's record is megabytes: parsed off the event loop.
        record = (
            orjson.loads(text)
            if len(text) < OFF_LOOP_CHARS
            else await self._encoding.run(lambda: orjson.loads(text))
        )
        if not isinstance(record, dict) or record.get("owner") != owner:
            raise _not_found(response_id, param)
        return record

    async def _restore(self, value: object, response_id: str, param: str | None) -> object:
        digests: set[str] = set()
        _find_marks(value, digests)
        images: dict[str, str] = {}
        for digest in digests:
            async with self._transfers:
                uri = await self._state.get(_image_key(digest))
            if uri is None:  # expired with its last response: this one is gone too
                raise _not_found(response_id, param)
            images[digest] = HashedURI(uri, digest)
        return _replace_marks(value, images)


def _may_be_owned_by(text: str, owner: str) -> bool:
    """Whether a stored record may be `owner`'s, from its first characters: a record names
    its owner first, so another key's large response is refused without parsing it. (A
    record written before owners came first is parsed, and its owner checked then.)"""
    if not text.startswith(_OWNER_FIELD):
        return True
    return text.startswith(orjson.dumps({"owner": owner})[:-1].decode() + ",")


def _response_key(response_id: str) -> str:
    return f"responses:{response_id}"


def _image_key(digest: str) -> str:
    return f"responses:image:{digest}"


def _not_found(response_id: str, param: str | None) -> ResponseNotFound:
    kind = "previous response" if param == "previous_response_id" else "response"
    return ResponseNotFound(f"no {kind} with id {response_id[:100]!r}", param=param)


def _encode_record(record: dict[str, object], images: dict[str, str]) -> bytes:
    """The record as JSON, each data URI in its input replaced by a mark (off the event
    loop: hashing an image takes a while)."""
    # The same URI object appears in both the input items and the conversation: hashed once.
    seen: dict[int, str | None] = {}
    for name in ("input_items", "conversation"):
        record[name] = _mark_images(record[name], images, seen)
    return orjson.dumps(record)


def _mark_images(value: object, images: dict[str, str], seen: dict[int, str | None]) -> object:
    """`value` with each data URI replaced by a mark, kept in `images`; `seen` holds the
    digest of each data URI already looked at (by identity: they are alive meanwhile)."""
    if isinstance(value, str):
        if not value.startswith("data:"):
            return value
        if id(value) in seen:
            digest = seen[id(value)]
        elif isinstance(value, HashedURI):
            digest = value.sha256
        else:
            digest = seen[id(value)] = _data_uri_digest(value)
        if digest is None:
            return value
        images[digest] = value
        return {IMAGE_MARK: digest}
    if isinstance(value, list):
        return [_mark_images(item, images, seen) for item in value]
    if isinstance(value, dict):
        return {key: _mark_images(item, images, seen) for key, item in value.items()}
    return value


def _data_uri_digest(value: str) -> str | None:
    """The sha256 of a base64 data URI's bytes; None for any other string."""
    if not value.startswith("data:"):
        return None
    header, comma, payload = value.partition(",")
    if not comma or not header.endswith(";base64"):
        return None
    try:
        data = pybase64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(data).hexdigest()


def _find_marks(value: object, digests: set[str]) -> None:
    if isinstance(value, dict):
        mark = value.get(IMAGE_MARK) if len(value) == 1 else None
        if isinstance(mark, str):
            digests.add(mark)
            return
        for item in value.values():
            _find_marks(item, digests)
    elif isinstance(value, list):
        for item in value:
            _find_marks(item, digests)


def _replace_marks(value: object, images: dict[str, str]) -> object:
    if isinstance(value, dict):
        mark = value.get(IMAGE_MARK) if len(value) == 1 else None
        if isinstance(mark, str):
            return images[mark]
        return {key: _replace_marks(item, images) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_marks(item, images) for item in value]
    return value
