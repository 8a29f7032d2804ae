"""Large data URIs left where they came, in the request body.

A 4 MB base64 image would otherwise be copied three times on its way through: parsed into a
Python string, encoded again into the upstream body, and both of those are fresh memory each
request. Instead the request body is searched for `"data:` strings before it is parsed; each
large one is cut out and a short stand-in takes its place in a small skeleton that is parsed
as usual. The image pipeline reads the image from the body itself, and an upstream JSON body
gets the client's own bytes back where the stand-in was: a sequence of buffers, sent one after
another, byte for byte what encoding the parsed string would have given (see `InlineURI`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from app.transport import BodyParts

Body = bytes | bytearray

# Smaller data URIs are cheaper to parse than to cut out.
MIN_INLINE_CHARS = 16 * 1024
# A data URI's header (`data:image/png;base64,`) is short; a longer one is not cut out.
_MAX_HEADER_CHARS = 256
# Reading a hostile body of many `"data:` strings stops here: the rest is parsed as usual.
_MAX_LOOKS = 64
_OPENING = b'"data:'
_QUOTE, _BACKSLASH, _COMMA = b'"', b"\\", b","
_MARK = "\x00"  # never in a real data URI: a stand-in that reached a decoder fails loudly


@dataclass(frozen=True, slots=True)
class InlineURI:
    """One data URI as it is in the request body: its header as text, its payload as bytes.

    The whole string is printable ASCII without quotes or backslashes once its payload has
    decoded as strict base64 (the header is checked when it is cut out), so the JSON string
    the client sent is exactly what encoding the parsed string would give."""

    header: str  # `data:image/png;base64,`, as the client wrote it
    payload: memoryview  # the base64 characters
    token: memoryview  # the JSON string, quotes included (empty for one the gateway made)

    def pieces(self) -> tuple[bytes | memoryview, ...]:
        """The JSON string, quotes included, as buffers to send one after another."""
        if self.token:
            return (self.token,)
        return (b'"' + self.header.encode("ascii"), self.payload, b'"')

    def is_json_string(self) -> bool:
        """Whether the client's bytes are a valid JSON string (a failed decode asks, to answer
        as parsing the whole body would have)."""
        try:
            orjson.loads(self.token)
        except orjson.JSONDecodeError:
            return False
        return True


class InlineImages:
    """The large data URIs of one request body, each under its stand-in string."""

    def __init__(self) -> None:
        self._nonce = os.urandom(8).hex()
        self._found: dict[str, InlineURI] = {}
        self._tokens: dict[bytes, InlineURI] = {}

    @classmethod
    def lift(cls, body: Body) -> tuple[InlineImages, bytes] | None:
        """Cut the large data URIs out of `body`: the images and the skeleton left, in which a
        stand-in string replaces each. None when there are none. The skeleton has the same
        structure as `body`, and is valid JSON when `body` is; the other way round too, but
        for what the cut-out strings hold, which decoding them checks."""
        view = memoryview(body)
        inline, kept = cls(), 0
        pieces: list[bytes | memoryview] = []
        for opening, end in _candidates(body):
            start = opening + 1
            comma = body.find(_COMMA, start, min(end, start + _MAX_HEADER_CHARS))
            if comma < 0:
                continue
            header = bytes(view[start : comma + 1]).decode("latin-1")
            if not (header.isascii() and header.isprintable()):
                continue
            stand_in = f"{header}{_MARK}{inline._nonce}.{len(inline._found)}"
            token = orjson.dumps(stand_in)
            found = InlineURI(header, view[comma + 1 : end], view[opening : end + 1])
            inline._found[stand_in] = found
            inline._tokens[token] = found
            pieces += (view[kept:opening], token)
            kept = end + 1
        if not inline._found:
            return None
        pieces.append(view[kept:])
        return inline, b"".join(pieces)

    @classmethod
    def extending(cls, inline: InlineImages | None) -> InlineImages:
        """New images beside those of `inline` (a request's own), which it leaves as it is."""
        extended = cls()
        if inline is not None:
            extended._nonce = inline._nonce
            extended._found = dict(inline._found)
            extended._tokens = dict(inline._tokens)
        return extended

    def add(self, mime: str, encoded: bytes) -> str:
        """A stand-in for a data URI the gateway made (an image it fetched or converted, a
        document for an upstream that reads PDFs), `encoded` its base64: made once, as bytes,
        it goes into an upstream body as it is, never into a string nor into a copy of the
        whole body."""
        header = f"data:{mime};base64,"
        stand_in = f"{header}{_MARK}{self._nonce}.{len(self._found)}"
        made = InlineURI(header, memoryview(encoded), memoryview(b""))
        self._found[stand_in] = made
        self._tokens[orjson.dumps(stand_in)] = made
        return stand_in

    def get(self, url: str) -> InlineURI | None:
        """The data URI `url` stands in for, if it is a stand-in."""
        return self._found.get(url) if _MARK in url else None

    def only_in_image_urls(self, payload: object) -> bool:
        """Whether every stand-in of the parsed skeleton is the `url` of an `image_url` part
        of its `messages`, once: a data URI anywhere else (in a text, say) is parsed with the
        body instead."""
        messages = payload.get("messages") if isinstance(payload, dict) else None
        left = set(self._found)
        for message in messages if isinstance(messages, list) else ():
            content = message.get("content") if isinstance(message, dict) else None
            for part in content if isinstance(content, list) else ():
                url = _image_url(part)
                if url is not None and url in left:
                    left.remove(url)
        return not left

    def dumps(self, payload: object) -> bytes | BodyParts:
        """`payload` as JSON, every stand-in in it replaced by the client's own bytes."""
        encoded = orjson.dumps(payload)
        found = sorted(self._occurrences(encoded))
        if not found:
            return encoded
        view, kept = memoryview(encoded), 0
        parts: list[bytes | memoryview] = []
        for at, token, uri in found:
            parts += (view[kept:at], *uri.pieces())
            kept = at + len(token)
        parts.append(view[kept:])
        return BodyParts(parts)

    def _occurrences(self, encoded: bytes) -> Iterator[tuple[int, bytes, InlineURI]]:
        for token, uri in self._tokens.items():
            at = encoded.find(token)
            while at >= 0:
                yield at, token, uri
                at = encoded.find(token, at + len(token))


def encode_json(payload: object, inline: InlineImages | None) -> bytes | BodyParts:
    """An upstream JSON body: `payload` with the client's data URIs where their stand-ins are."""
    return orjson.dumps(payload) if inline is None else inline.dumps(payload)


def _candidates(body: Body) -> Iterator[tuple[int, int]]:
    """Where each large `"data:` string opens and closes (its quotes), for strings with no
    escapes in them. An opening quote with an odd run of backslashes before it is inside
    another string; any other quote before `data:` opens a string in valid JSON."""
    at, looks = body.find(_OPENING), 0
    while at >= 0 and looks < _MAX_LOOKS:
        looks += 1
        end = body.find(_QUOTE, at + 1)
        if end < 0:
            return
        large = end - at > MIN_INLINE_CHARS
        if large and not _escaped(body, at) and body.find(_BACKSLASH, at, end) < 0:
            yield at, end
            at = body.find(_OPENING, end + 1)
        else:
            at = body.find(_OPENING, at + 1)


def _escaped(body: Body, quote: int) -> bool:
    run = 0
    while quote - run > 0 and body[quote - run - 1] == 0x5C:  # a backslash
        run += 1
    return run % 2 == 1


def _image_url(part: object) -> object:
    if not isinstance(part, dict) or part.get("type") != "image_url":
        return None
    image_url = part.get("image_url")
    return image_url.get("url") if isinstance(image_url, dict) else None
