"""Data URIs that carry the SHA-256 of their image, so that it is not computed twice."""

from __future__ import annotations


class HashedURI(str):
    """A base64 `data:` URI with the SHA-256 of the image bytes it encodes, as the response
    store keeps one: a conversation continued turn after turn is then neither decoded nor
    hashed again for each of its earlier images. Only the gateway makes these, and only of a
    URI whose payload it has decoded (a client's JSON only ever gives plain strings); chat
    request validation passes them on as they are, without copying them."""

    sha256: str

    def __new__(cls, uri: str, sha256: str) -> HashedURI:
        hashed = super().__new__(cls, uri)
        hashed.sha256 = sha256
        return hashed
