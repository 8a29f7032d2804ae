"""URLs and job ids upstreams hand back: checked like a client's input before they are used."""

from __future__ import annotations

import pytest

from app.errors import UpstreamError
from app.providers.handed import HandedURLs
from app.providers.jobs import job_id

pytestmark = pytest.mark.anyio


async def resolves_to(address: str) -> HandedURLs:
    async def resolver(host: str, port: int) -> list[str]:  # noqa: ARG001
        return [address]

    return HandedURLs(
        "mpx",
        "https://api.example.com/v2",
        ["storage.googleapis.com", "*.cdn.example.net"],
        allow_private=False,
        resolver=resolver,
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v2/uploads/a?sig=1",  # the upstream's own origin
        "https://storage.googleapis.com/bucket/a.png?X-Goog-Signature=1",
        "https://eu.cdn.example.net/a.png",
    ],
)
async def test_the_upstreams_own_origin_and_its_storage_hosts_pass(url: str) -> None:
    urls = await resolves_to("142.250.1.1")
    assert str(await urls.check(url)) == url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://api.example.com/v2/x", "not one of its storage hosts"),  # another origin
        ("https://api.example.com:8443/v2/x", "not one of its storage hosts"),
        ("https://169.254.169.254/latest", "not one of its storage hosts"),
        ("https://10.1.2.3/bucket", "not one of its storage hosts"),
        ("https://cdn.example.net/a.png", "not one of its storage hosts"),  # `*.` wants a label
        ("ftp://storage.googleapis.com/a", "not http(s)"),
        ("https://[::1/", "malformed"),
    ],
)
async def test_any_other_url_is_refused_naming_its_host_only(url: str, says: str) -> None:
    urls = await resolves_to("142.250.1.1")
    with pytest.raises(UpstreamError) as caught:
        await urls.check(url)
    assert says in caught.value.message
    assert "sig" not in caught.value.message


@pytest.mark.parametrize(
    ("address", "says"),
    [("127.0.0.1", "loopback"), ("10.0.0.8", "private"), ("169.254.169.254", "metadata")],
)
async def test_a_storage_host_that_resolves_inward_is_refused(address: str, says: str) -> None:
    urls = await resolves_to(address)
    with pytest.raises(UpstreamError) as caught:
        await urls.check("https://storage.googleapis.com/bucket/a.png")
    assert says in caught.value.message


@pytest.mark.parametrize("value", ["OGSsSuHXIN8YLzenRbgN", "-x_1", "3f2c:a.b", "a" * 128])
def test_a_job_id_is_one_safe_path_segment(value: str) -> None:
    assert job_id(value, "mpx") == value


@pytest.mark.parametrize(
    "value", ["..", ".", "../x", "a/b", "a?b", "a b", "%2e%2e", "", "a" * 129, 12, None]
)
def test_anything_else_is_no_job_id(value: object) -> None:
    with pytest.raises(UpstreamError) as caught:
        job_id(value, "mpx")
    assert not caught.value.retryable  # submitting the job again would spend credits again
