"""Image URL parsing: any host the resolver could not take is a 400, never a crash later."""

from __future__ import annotations

import pytest

from app.errors import ImageURLForbidden
from app.images.urls import parse_image_url


@pytest.mark.parametrize(
    "url",
    [
        "http://a..b.com/cat.png",
        "http://" + "a" * 64 + ".example.com/",
        "http://xn--a.example.com/",
        "http://" + "b." * 127 + "cc/",
        "http://.example.com/",
    ],
)
def test_hosts_no_resolver_takes_are_refused(url: str) -> None:
    with pytest.raises(ImageURLForbidden) as refused:
        parse_image_url(url, "messages[0].content[0].image_url")
    assert refused.value.param == "messages[0].content[0].image_url"


@pytest.mark.parametrize(
    "url",
    [
        "https://bücher.example/cat.png",
        "https://xn--bcher-kva.example/cat.png",
        "http://my_bucket.s3.example.com/cat.png",
        "http://example.com./cat.png",
        "http://[2001:db8::1]:8080/cat.png",
        "http://2130706433/cat.png",
    ],
)
def test_ordinary_hosts_are_accepted(url: str) -> None:
    assert parse_image_url(url, None).raw_host
