"""Data URIs cut out of a request body and spliced back into upstream bodies."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.config import RequestsConfig
from app.errors import InvalidJSON
from app.transport import BodyParts
from app.wire.inline import MIN_INLINE_CHARS, InlineImages, InlineURI
from app.wire.reading import parse_chat_request, read_chat_request
from app.wire.shape import RequestShape

SHAPE = RequestShape(RequestsConfig())
LARGE = "data:image/png;base64," + base64.b64encode(os.urandom(MIN_INLINE_CHARS)).decode()
OTHER = "data:image/jpeg;base64," + base64.b64encode(os.urandom(2 * MIN_INLINE_CHARS)).decode()
SMALL = "data:image/png;base64," + base64.b64encode(b"tiny").decode()


def body_of(*urls: str, text: str = "what is this?", **extra: Any) -> str:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": parts}], **extra})


def text_of(found: InlineURI) -> str:
    return found.header + bytes(found.payload).decode("ascii")


def joined(encoded: bytes | BodyParts) -> bytes:
    return b"".join(encoded.parts) if isinstance(encoded, BodyParts) else encoded


def test_large_data_uris_in_image_parts_are_cut_out_and_put_back() -> None:
    body = body_of(LARGE, SMALL, OTHER).encode()

    lifted = InlineImages.lift(body)

    assert lifted is not None
    inline, skeleton = lifted
    assert len(skeleton) < 1000
    payload = orjson.loads(skeleton)
    assert inline.only_in_image_urls(payload)
    urls = [part["image_url"]["url"] for part in payload["messages"][0]["content"][1:]]
    assert urls[1] == SMALL  # too small to be worth cutting out
    for stand_in, original in ((urls[0], LARGE), (urls[2], OTHER)):
        found = inline.get(stand_in)
        assert found is not None
        assert text_of(found) == original
        assert stand_in.startswith(found.header)
        assert original.startswith(found.header)
    assert joined(inline.dumps(payload)) == orjson.dumps(orjson.loads(body))


def test_the_parsed_request_holds_stand_ins_and_its_upstream_body_the_original() -> None:
    body = body_of(LARGE, text='say "hi"', temperature=0.5).encode()

    request = parse_chat_request(body, SHAPE)
    assert request.inline is None  # parsed whole

    lifted = InlineImages.lift(body)
    assert lifted is not None
    inline, skeleton = lifted
    dumped = inline.dumps(orjson.loads(skeleton))
    assert isinstance(dumped, BodyParts)
    assert dumped.size == len(joined(dumped)) == len(orjson.dumps(orjson.loads(body)))
    assert any(
        isinstance(part, memoryview) and len(part) > MIN_INLINE_CHARS for part in dumped.parts
    )


@pytest.mark.anyio
async def test_read_request_keeps_large_data_uris_in_the_body() -> None:
    body = body_of(LARGE).encode()

    request = await read_chat_request(body, SHAPE)

    assert request.inline is not None
    [(_, part)] = request.image_parts()
    found = request.inline.get(part.image_url.url)
    assert found is not None
    assert text_of(found) == LARGE


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        body_of(SMALL, text=LARGE),  # a data URI as text
        body_of(SMALL, text="x", note=LARGE),  # elsewhere in the body
        json.dumps({"model": "m", "messages": [{"role": "user", "content": LARGE}]}),
        json.dumps({"model": "m", "messages": [], LARGE: 1}),  # a key
    ],
)
async def test_a_data_uri_anywhere_but_an_image_url_is_parsed_with_the_body(body: str) -> None:
    raw = body.encode()
    try:
        request = await read_chat_request(raw, SHAPE)
    except Exception as failed:  # the same error as parsing it whole
        with pytest.raises(type(failed)):
            parse_chat_request(raw, SHAPE)
        return
    assert request.inline is None
    assert request.model_dump(exclude_unset=True) == parse_chat_request(raw, SHAPE).model_dump(
        exclude_unset=True
    )


@pytest.mark.parametrize("after", ['\\" here', ""])
def test_an_escaped_data_uri_opening_inside_a_string_is_not_cut_out(after: str) -> None:
    text = 'he wrote \\"' + LARGE + after  # an escaped quote before it, as JSON has them
    body = b'{"model": "m", "messages": [{"role": "user", "content": "' + text.encode() + b'"}]}'

    assert InlineImages.lift(body) is None
    assert orjson.loads(body)["messages"][0]["content"].startswith('he wrote "data:')


@pytest.mark.anyio
async def test_a_header_with_a_control_character_leaves_the_body_invalid() -> None:
    body = body_of(LARGE).encode().replace(b"image/png", b"image/png\x01", 1)
    assert body.count(b"\x01") == 1

    assert InlineImages.lift(body) is None
    with pytest.raises(InvalidJSON):
        await read_chat_request(body, SHAPE)


@pytest.mark.parametrize(
    "url",
    [
        LARGE.replace("base64,", "base64,\\/", 1),  # an escape inside: not as the client wrote it
        "data:" + "x" * 300 + ";base64," + LARGE[22:],  # a header too long to be one
        "data:image/png\\u0001;base64," + LARGE[22:],  # a header that needs escaping
    ],
)
def test_strings_that_would_not_encode_back_the_same_are_not_cut_out(url: str) -> None:
    body = b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", '
    body += b'"image_url": {"url": "' + url.encode() + b'"}}]}]}'

    assert InlineImages.lift(body) is None


def test_an_invalid_body_stays_invalid_and_a_bad_uri_is_told_apart() -> None:
    broken = body_of(LARGE).encode().replace(b'"m"', b"'m'")
    lifted = InlineImages.lift(broken)
    assert lifted is not None
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(lifted[1])

    with_control = body_of(LARGE).encode().replace(b"base64,", b"base64,\x01", 1)
    lifted = InlineImages.lift(with_control)
    assert lifted is not None
    inline, skeleton = lifted
    [found] = [inline.get(u) for u in _urls(orjson.loads(skeleton))]
    assert found is not None
    assert not found.is_json_string()


def test_only_so_many_openings_are_looked_at() -> None:
    body = body_of(*[LARGE] * 100).encode()

    lifted = InlineImages.lift(body)

    assert lifted is not None
    inline, skeleton = lifted
    urls = _urls(orjson.loads(skeleton))
    assert sum(inline.get(url) is not None for url in urls) == 64
    assert joined(inline.dumps(orjson.loads(skeleton))) == orjson.dumps(orjson.loads(body))


def _urls(payload: dict[str, Any]) -> list[str]:
    parts = payload["messages"][0]["content"]
    return [part["image_url"]["url"] for part in parts if part["type"] == "image_url"]


_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(_TEXT, min_size=1, max_size=3),
    extra=st.dictionaries(st.sampled_from(["user", "metadata", "x_note", "seed"]), _VALUES),
    images=st.lists(st.sampled_from([LARGE, OTHER, SMALL]), min_size=1, max_size=4),
    spaced=st.booleans(),
)
def test_the_upstream_body_is_what_encoding_the_whole_request_gives(
    texts: list[str], extra: dict[str, Any], images: list[str], spaced: bool
) -> None:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text} for text in texts]
    parts += [{"type": "image_url", "image_url": {"url": url, "detail": "auto"}} for url in images]
    tree = {**extra, "model": "m", "messages": [{"role": "user", "content": parts}]}
    body = (json.dumps(tree, indent=1) if spaced else json.dumps(tree, ensure_ascii=False)).encode()

    lifted = InlineImages.lift(body)

    assert lifted is not None or all(url == SMALL for url in images)
    if lifted is not None:
        inline, skeleton = lifted
        payload = orjson.loads(skeleton)
        assert inline.only_in_image_urls(payload)
        assert joined(inline.dumps(payload)) == orjson.dumps(orjson.loads(body))


def test_an_image_the_gateway_made_goes_into_the_body_as_buffers_beside_the_clients() -> None:
    lifted = InlineImages.lift(body_of(LARGE).encode())
    assert lifted is not None
    inline, skeleton = lifted
    made = os.urandom(50_000)

    extended = InlineImages.extending(inline)
    stand_in = extended.add("image/png", base64.b64encode(made))
    payload = orjson.loads(skeleton)
    payload["messages"][0]["content"].append({"type": "image_url", "image_url": {"url": stand_in}})
    sent = extended.dumps(payload)

    assert isinstance(sent, BodyParts)
    decoded = json.loads(joined(sent))
    urls = [part["image_url"]["url"] for part in decoded["messages"][0]["content"][1:]]
    assert urls == [LARGE, "data:image/png;base64," + base64.b64encode(made).decode()]
    found = extended.get(stand_in)
    assert found is not None
    assert any(part is found.payload for part in sent.parts)  # not a copy of the base64
    assert inline.get(stand_in) is None  # the request's own images are left as they were
