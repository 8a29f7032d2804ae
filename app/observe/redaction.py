"""Keeping secrets out of what leaves the gateway: client-facing messages and log lines."""

from __future__ import annotations

import base64
import functools
import re
from urllib.parse import quote, quote_plus

MAX_UPSTREAM_MESSAGE = 500
# Shorter secrets are redacted as written (in any case) but not in base64: the few characters
# that would encode them could be anybody's text.
MIN_BASE64_SECRET = 8

_QUERY_STRING = re.compile(r"(\bhttps?://[^\s?#\"'<>]+)\?[^\s\"'<>]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
_BASE64_BLOB = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")
# Signing parameters of presigned URLs, also when they appear without their URL.
_SIGNING_PARAMETER = re.compile(
    r"(?i)\b((?:X-Amz-|X-Goog-)[A-Za-z-]+|Signature|GoogleAccessId|sig|se|sp|sv|token)=[^&\s\"'<>]+"
)


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove credentials, URL query strings (presigned URLs) and base64 blobs from text."""
    pattern = secrets_pattern(secrets)
    if _plainly_clean(text, pattern):
        return text
    if pattern is not None:
        text = pattern.sub("[redacted]", text)
    text = _BEARER.sub(r"\1[redacted]", text)
    text = _QUERY_STRING.sub(r"\1", text)
    text = _SIGNING_PARAMETER.sub(r"\1=[redacted]", text)
    return _BASE64_BLOB.sub(lambda m: f"[{len(m.group())} base64 characters]", text)


def _plainly_clean(text: str, secrets: re.Pattern[str] | None) -> bool:
    """True when no pattern above can match: most log fields (model names, providers) are
    short words, and the request log must not pay four regular expressions for each."""
    return (
        len(text) < 200
        and "=" not in text
        and "?" not in text
        and "bearer" not in text.lower()
        and (secrets is None or secrets.search(text) is None)
    )


@functools.lru_cache(maxsize=64)
def secrets_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    """One expression matching every secret however an echo may have disguised it: in any
    case, URL-encoded, or in base64 (standard or URL-safe, alone or inside a longer text)."""
    forms = {form for secret in secrets if secret for form in _disguises(secret)}
    if not forms:
        return None
    alternatives = sorted(forms, key=len, reverse=True)  # the longest form wins
    return re.compile("|".join(re.escape(form) for form in alternatives), re.IGNORECASE)


def _disguises(secret: str) -> set[str]:
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    if len(secret) >= MIN_BASE64_SECRET:
        forms.update(_base64_cores(secret.encode()))
    return {form for form in forms if form}


def _base64_cores(secret: bytes) -> set[str]:
    """The base64 characters that encode `secret` alone, at each of the three byte offsets it
    may start at within longer data (`user:<key>` in a Basic header, a JSON body): the
    characters shared with the bytes around it are left out."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + secret).decode()
        first = -(-offset * 8 // 6)  # the first character made of the secret's bits only
        last = (offset + len(secret)) * 8 // 6  # past the last one
        core = encoded[first:last]
        cores.update({core, core.translate(_URL_SAFE)})
    return cores


_URL_SAFE = str.maketrans("+/", "-_")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Text fit for a client: scrubbed, and cut short."""
    text = scrub(text, secrets)
    if len(text) > MAX_UPSTREAM_MESSAGE:
        text = text[:MAX_UPSTREAM_MESSAGE] + "…"
    return text
