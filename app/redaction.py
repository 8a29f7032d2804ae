"""Keeping secrets out of what leaves the gateway: client-facing messages and log lines."""

from __future__ import annotations

import re

MAX_UPSTREAM_MESSAGE = 500

_QUERY_STRING = re.compile(r"(\bhttps?://[^\s?#\"'<>]+)\?[^\s\"'<>]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
_BASE64_BLOB = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")
# Signing parameters of presigned URLs, also when they appear without their URL.
_SIGNING_PARAMETER = re.compile(
    r"(?i)\b((?:X-Amz-|X-Goog-)[A-Za-z-]+|Signature|GoogleAccessId|sig|se|sp|sv|token)=[^&\s\"'<>]+"
)


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove credentials, URL query strings (presigned URLs) and base64 blobs from text."""
    if _plainly_clean(text, secrets):
        return text
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _BEARER.sub(r"\1[redacted]", text)
    text = _QUERY_STRING.sub(r"\1", text)
    text = _SIGNING_PARAMETER.sub(r"\1=[redacted]", text)
    return _BASE64_BLOB.sub(lambda m: f"[{len(m.group())} base64 characters]", text)


def _plainly_clean(text: str, secrets: tuple[str, ...]) -> bool:
    """True when no pattern above can match: most log fields (model names, providers) are
    short words, and the request log must not pay four regular expressions for each."""
    return (
        len(text) < 200
        and "=" not in text
        and "?" not in text
        and "bearer" not in text.lower()
        and not any(secret and secret in text for secret in secrets)
    )


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Text fit for a client: scrubbed, and cut short."""
    text = scrub(text, secrets)
    if len(text) > MAX_UPSTREAM_MESSAGE:
        text = text[:MAX_UPSTREAM_MESSAGE] + "…"
    return text
