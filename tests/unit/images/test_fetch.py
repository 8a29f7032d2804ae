"""The fetcher refuses forbidden URLs before any connection: schemes, addresses however spelled,
names that resolve into private space. Every refusal here happens without a socket."""

from __future__ import annotations

import pytest

from app.errors import ImageError, ImageFetchFailed, ImageURLForbidden
from tests.unit.images.conftest import Fetchers, TableResolver

pytestmark = pytest.mark.anyio

SECRET_QUERY = "?X-Amz-Signature=SECRET&X-Amz-Credential=SECRET"
PARAM = "messages[0].content[1].image_url"

FORBIDDEN_HOSTS = [
    "127.0.0.1",
    "127.9.9.9",
    "[::1]",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.0.10",
    "[fc00::1]",
    "[fd12:3456::1]",
    "169.254.1.1",
    "[fe80::1]",
    "[fe80::1%25eth0]",
    "100.64.0.1",
    "224.0.0.1",
    "[ff02::1]",
    "240.0.0.1",
    "0.0.0.0",
    "0.1.2.3",
    "255.255.255.255",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::ffff:10.0.0.1]",
    "[::127.0.0.1]",
    "[2002:7f00:1::]",
    "[64:ff9b::a00:1]",
    "2130706433",
    "0x7f.1",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "0",
    "017700000001",
    "127.0.0.1.",
    "169.254.169.254",
    "[fd00:ec2::254]",
    "user:pass@127.0.0.1",
    "public.example@10.0.0.1",
]


@pytest.mark.parametrize("host", FORBIDDEN_HOSTS)
@pytest.mark.parametrize("port", ["", ":8080"])
async def test_forbidden_addresses_are_refused_before_connecting(
    fetchers: Fetchers, connections: list[str], host: str, port: str
) -> None:
    resolver = TableResolver()
    fetcher = fetchers.make(resolver=resolver)

    with pytest.raises(ImageURLForbidden) as caught:
        await fetcher.fetch(f"http://{host}{port}/cat.png{SECRET_QUERY}", PARAM)

    assert caught.value.param == PARAM
    assert "SECRET" not in caught.value.message
    assert "pass" not in caught.value.message
    assert resolver.queries == []
    assert connections == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/",
        "http://2852039166/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "https://169.254.169.254/",
    ],
)
async def test_cloud_metadata_is_refused_even_with_private_networks_allowed(
    fetchers: Fetchers, connections: list[str], url: str
) -> None:
    fetcher = fetchers.make(allow_private=True)

    with pytest.raises(ImageURLForbidden, match="metadata"):
        await fetcher.fetch(url)

    assert connections == []


@pytest.mark.parametrize(
    "answers",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["::1"],
        ["fd00::7"],
        ["::ffff:192.168.1.1"],
        ["169.254.169.254"],
        ["93.184.215.14", "10.0.0.1"],
        ["2606:2800::1", "::1"],
    ],
)
async def test_names_resolving_into_private_space_are_refused(
    fetchers: Fetchers, connections: list[str], answers: list[str]
) -> None:
    resolver = TableResolver({"images.example.com": answers})
    fetcher = fetchers.make(resolver=resolver)

    with pytest.raises(ImageURLForbidden) as caught:
        await fetcher.fetch(f"https://images.example.com/cat.png{SECRET_QUERY}", PARAM)

    assert resolver.queries == ["images.example.com"]
    assert connections == []
    assert caught.value.param == PARAM
    assert "SECRET" not in caught.value.message


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure WireServer
        "::ffff:169.254.170.2",  # v4-mapped
    ],
)
async def test_a_name_resolving_to_metadata_is_refused_with_private_networks_allowed(
    fetchers: Fetchers, connections: list[str], address: str
) -> None:
    resolver = TableResolver({"innocent.example.com": [address]})
    fetcher = fetchers.make(allow_private=True, resolver=resolver)

    with pytest.raises(ImageURLForbidden) as caught:
        await fetcher.fetch("http://innocent.example.com/cat.png", PARAM)

    assert resolver.queries == ["innocent.example.com"]
    assert connections == []
    assert caught.value.code == "image_url_forbidden"
    assert caught.value.param == PARAM


@pytest.mark.parametrize("answers", [None, [], ["not an address"]])
async def test_unresolvable_names_fail_the_fetch(
    fetchers: Fetchers, connections: list[str], answers: list[str] | None
) -> None:
    resolver = TableResolver({} if answers is None else {"images.example.com": answers})
    fetcher = fetchers.make(resolver=resolver)

    with pytest.raises(ImageFetchFailed) as caught:
        await fetcher.fetch(f"http://images.example.com/cat.png{SECRET_QUERY}", PARAM)

    assert caught.value.param == PARAM
    assert "SECRET" not in caught.value.message
    assert connections == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://images.example.com/cat.png",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/_GET",
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "ws://images.example.com/cat.png",
        "//images.example.com/cat.png",
        "http:///cat.png",
        "http:/cat.png",
    ],
)
async def test_only_http_urls_with_a_host_are_fetched(
    fetchers: Fetchers, connections: list[str], url: str
) -> None:
    resolver = TableResolver()
    fetcher = fetchers.make(resolver=resolver)

    with pytest.raises(ImageURLForbidden) as caught:
        await fetcher.fetch(url + SECRET_QUERY, PARAM)

    assert caught.value.param == PARAM
    assert "SECRET" not in caught.value.message
    assert resolver.queries == []
    assert connections == []


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/cat.png",
        "http://[oops/cat.png",
        "http://127.0.0.1:99999/cat.png",
        "http://images.example.com:port/cat.png",
    ],
)
async def test_malformed_urls_are_a_client_error(
    fetchers: Fetchers, connections: list[str], url: str
) -> None:
    fetcher = fetchers.make()

    with pytest.raises(ImageError) as caught:
        await fetcher.fetch(url + SECRET_QUERY, PARAM)

    assert caught.value.param == PARAM
    assert "SECRET" not in caught.value.message
    assert connections == []


@pytest.mark.parametrize(
    "url",
    [
        "http://bücher.example/cat.png",
        "http://127.0.0.1/kätzchen.png",
        "http://images.example.com/cat.png?name=kätzchen",
    ],
)
async def test_non_ascii_urls_are_checked_like_any_other(
    fetchers: Fetchers, connections: list[str], url: str
) -> None:
    resolver = TableResolver(
        {name: ["127.0.0.1"] for name in ("bücher.example", "xn--bcher-kva.example")}
        | {"images.example.com": ["10.0.0.1"]}
    )

    with pytest.raises(ImageError):
        await fetchers.make(resolver=resolver).fetch(url)

    assert connections == []
