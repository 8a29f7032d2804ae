"""Client image URLs, parsed strictly: a 400 for anything the fetcher could not reach."""

from __future__ import annotations

import httpx
import idna

from app.errors import ImageURLForbidden
from app.errors.quoting import shortened
from app.images.addresses import parse_numeric_host


def parse_image_url(url: str, param: str | None) -> httpx.URL:
    """An http(s) image URL, normalised (IDNA host, percent-encoded path); else a 400."""
    try:
        parsed = httpx.URL(url)
        host, port = parsed.raw_host.decode("ascii"), parsed.port
    except (httpx.InvalidURL, ValueError, TypeError):  # IDNA and Unicode errors included
        raise ImageURLForbidden("the image URL is malformed", param=param) from None
    if parsed.scheme not in ("http", "https"):
        raise ImageURLForbidden(
            "image URLs must be http(s) or a data URI, not "
            f"{shortened(parsed.scheme) or 'schemeless'!r}",
            param=param,
        )
    if not host:
        raise ImageURLForbidden("the image URL has no host", param=param)
    if not _is_host_name(host):
        raise ImageURLForbidden("the image URL's host is not a valid name", param=param)
    if port is not None and not 0 < port < 65536:
        raise ImageURLForbidden("the image URL has an invalid port", param=param)
    return parsed


def _is_host_name(host: str) -> bool:
    """An address, or a name DNS can carry: labels of 1 to 63 characters, at most 253 in all,
    IDNA labels (`xn--`) that decode. Names that fail here would fail in the resolver."""
    if parse_numeric_host(host) is not None:
        return True
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if len(name) > 253 or not all(0 < len(label) <= 63 for label in labels):
        return False
    try:
        for label in labels:
            if label[:4].lower() == "xn--":
                idna.decode(label)
    except (idna.IDNAError, UnicodeError):
        return False
    return True
