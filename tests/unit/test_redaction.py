"""Secrets are redacted however an echo disguises them: case, base64, URL encoding."""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote, quote_plus

import pytest

from app.observe.logs import ScrubbingFilter
from app.observe.redaction import redact, scrub

KEY = "sk-live/Unit+Key=91ab&c0de"


def disguised(key: str) -> list[str]:
    raw = key.encode()
    return [
        key,
        key.upper(),
        key.lower(),
        key.swapcase(),
        quote(key, safe=""),
        quote_plus(key),
        quote(key, safe="").lower(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        *(base64.b64encode(prefix + raw).decode() for prefix in (b"u:", b"us:", b"use:")),
        base64.b64encode(json.dumps({"api_key": key}).encode()).decode(),
    ]


@pytest.mark.parametrize("text", disguised(KEY))
def test_every_disguise_of_a_secret_is_redacted(text: str) -> None:
    message = f"upstream said: bad credentials {text} (request 42)"
    scrubbed = redact(message, (KEY,))
    assert "[redacted]" in scrubbed
    for form in disguised(KEY):
        # What is left of a longer base64 text may keep a few characters of its edges.
        assert form[2:-4] not in scrubbed, scrubbed
    assert scrubbed.startswith("upstream said: bad credentials ")


def test_short_secrets_are_redacted_as_written_but_not_guessed_in_base64() -> None:
    assert scrub("key ABCD refused, see QUJD", ("abcd",)) == "key [redacted] refused, see QUJD"


def test_logs_scrub_every_disguise_of_every_configured_secret() -> None:
    other = "gw-client-key-55aa77"
    record = logging.LogRecord(
        "app", logging.INFO, __file__, 1, "saw %s and %s", (KEY.upper(), quote(other)), None
    )
    ScrubbingFilter([KEY, other]).filter(record)
    assert record.getMessage() == "saw [redacted] and [redacted]"
