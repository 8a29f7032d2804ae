"""The fetcher against a real HTTP server on 127.0.0.1: redirects, caps, timeouts, coalescing."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.errors import ImageFetchFailed, ImageTooLarge, ImageURLForbidden
from app.observe.record import RequestRecord, open_record
from tests.unit.images.conftest import Fetchers, TableResolver
from tests.unit.images.local_server import Exchange, LocalServer
from tests.unit.images.samples import picture

pytestmark = pytest.mark.anyio

PNG = picture((64, 48))
SECRET_QUERY = "?X-Amz-Signature=SECRET"


def serve_png(server: LocalServer, path: str = "/cat.png", delay_s: float = 0.0) -> str:
    async def handler(exchange: Exchange) -> None:
        await asyncio.sleep(delay_s)
        await exchange.respond(200, PNG, **{"Content-Type": "image/png"})

    server.routes[path] = handler
    return server.url(path)


def redirect(server: LocalServer, path: str, location: str) -> None:
    async def handler(exchange: Exchange) -> None:
        await exchange.redirect(location)

    server.routes[path] = handler


async def test_a_fetch_returns_the_exact_bytes(fetchers: Fetchers, server: LocalServer) -> None:
    fetcher = fetchers.make(allow_private=True)

    body = await fetcher.fetch(serve_png(server) + SECRET_QUERY)

    assert body == PNG


async def test_a_chunked_body_under_the_cap_arrives_whole(
    fetchers: Fetchers, server: LocalServer
) -> None:
    async def chunked(exchange: Exchange) -> None:
        await exchange.send_chunked([PNG[:10], PNG[10:100], PNG[100:]])

    server.routes["/chunked.png"] = chunked
    fetcher = fetchers.make(allow_private=True)

    assert await fetcher.fetch(server.url("/chunked.png")) == PNG


async def test_a_name_resolving_to_loopback_is_refused_without_private_networks(
    fetchers: Fetchers, server: LocalServer, connections: list[str]
) -> None:
    serve_png(server)
    resolver = TableResolver({"images.example.com": ["127.0.0.1"]})
    url = server.url("/cat.png", host="images.example.com")

    with pytest.raises(ImageURLForbidden, match="loopback"):
        await fetchers.make(resolver=resolver).fetch(url)
    allowed = await fetchers.make(allow_private=True, resolver=resolver).fetch(url)

    assert allowed == PNG
    assert connections == ["127.0.0.1"]
    assert server.hits["/cat.png"] == 1


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam" + SECRET_QUERY,
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
async def test_a_redirect_to_cloud_metadata_is_refused(
    fetchers: Fetchers, server: LocalServer, connections: list[str], location: str
) -> None:
    redirect(server, "/hop", location)
    fetcher = fetchers.make(allow_private=True)

    with pytest.raises(ImageURLForbidden) as caught:
        await fetcher.fetch(server.url("/hop") + SECRET_QUERY, "messages[0].content[0].image_url")

    assert caught.value.param == "messages[0].content[0].image_url"
    assert "SECRET" not in caught.value.message
    assert connections == ["127.0.0.1"]


async def test_a_redirect_to_a_name_resolving_to_metadata_is_refused(
    fetchers: Fetchers, server: LocalServer, connections: list[str]
) -> None:
    redirect(server, "/hop", "http://metadata.internal/latest/")
    resolver = TableResolver({"metadata.internal": ["169.254.169.254"]})
    fetcher = fetchers.make(allow_private=True, resolver=resolver)

    with pytest.raises(ImageURLForbidden):
        await fetcher.fetch(server.url("/hop"))

    assert resolver.queries == ["metadata.internal"]
    assert connections == ["127.0.0.1"]


@pytest.mark.parametrize(
    "location", ["ftp://127.0.0.1/cat.png", "file:///etc/passwd", "gopher://127.0.0.1/"]
)
async def test_a_redirect_to_another_scheme_is_refused(
    fetchers: Fetchers, server: LocalServer, connections: list[str], location: str
) -> None:
    redirect(server, "/hop", location)

    with pytest.raises(ImageURLForbidden):
        await fetchers.make(allow_private=True).fetch(server.url("/hop"))

    assert connections == ["127.0.0.1"]


async def test_three_redirects_are_followed(fetchers: Fetchers, server: LocalServer) -> None:
    serve_png(server, "/final.png")
    redirect(server, "/r1", "/r2")
    redirect(server, "/r2", server.url("/r3"))
    redirect(server, "/r3", "final.png")

    assert await fetchers.make(allow_private=True).fetch(server.url("/r1")) == PNG


async def test_more_than_three_redirects_fail(fetchers: Fetchers, server: LocalServer) -> None:
    serve_png(server, "/final.png")
    for hop in range(1, 5):
        redirect(server, f"/r{hop}", f"/r{hop + 1}" if hop < 4 else "/final.png")

    with pytest.raises(ImageFetchFailed, match="redirects") as caught:
        await fetchers.make(allow_private=True).fetch(server.url("/r1") + SECRET_QUERY)

    assert "SECRET" not in caught.value.message
    assert server.hits["/final.png"] == 0


async def test_a_redirect_loop_fails(fetchers: Fetchers, server: LocalServer) -> None:
    redirect(server, "/loop", "/loop")

    with pytest.raises(ImageFetchFailed):
        await fetchers.make(allow_private=True).fetch(server.url("/loop"))

    assert server.hits["/loop"] == 4


@pytest.mark.parametrize("location", ["", "http://[oops/cat.png", "http://127.0.0.1:99999/"])
async def test_a_broken_redirect_fails_the_fetch(
    fetchers: Fetchers, server: LocalServer, location: str
) -> None:
    redirect(server, "/hop", location)

    with pytest.raises((ImageFetchFailed, ImageURLForbidden)):
        await fetchers.make(allow_private=True).fetch(server.url("/hop"))


async def test_an_error_status_fails_the_fetch(fetchers: Fetchers, server: LocalServer) -> None:
    with pytest.raises(ImageFetchFailed, match="404") as caught:
        await fetchers.make(allow_private=True).fetch(server.url("/missing.png") + SECRET_QUERY)

    assert "SECRET" not in caught.value.message


async def test_an_endless_chunked_body_stops_at_the_cap(
    fetchers: Fetchers, server: LocalServer
) -> None:
    chunk, count = b"\0" * 65536, 1024  # 64 MiB on offer

    async def endless(exchange: Exchange) -> None:
        await exchange.send_chunked([chunk] * count)

    server.routes["/huge.png"] = endless
    fetcher = fetchers.make(allow_private=True, max_bytes=100_000)

    with pytest.raises(ImageTooLarge) as caught:
        await fetcher.fetch(server.url("/huge.png") + SECRET_QUERY)
    await asyncio.wait_for(server.client_went_away.wait(), timeout=5)

    assert "SECRET" not in caught.value.message
    assert server.body_bytes_sent < len(chunk) * count // 4


async def test_an_oversized_content_length_is_refused_before_reading(
    fetchers: Fetchers, server: LocalServer
) -> None:
    async def declared_huge(exchange: Exchange) -> None:
        await exchange.send_head(200, {"Content-Length": "50000000"})
        await exchange.send(b"\0" * 1000)
        await asyncio.sleep(30)

    server.routes["/huge.png"] = declared_huge
    fetcher = fetchers.make(allow_private=True, max_bytes=100_000, timeout_s=10)
    started = time.monotonic()

    with pytest.raises(ImageTooLarge):
        await fetcher.fetch(server.url("/huge.png"))

    assert time.monotonic() - started < 2


@pytest.mark.parametrize("headers_first", [True, False])
async def test_a_slow_server_fails_after_the_timeout(
    fetchers: Fetchers, server: LocalServer, headers_first: bool
) -> None:
    async def slow(exchange: Exchange) -> None:
        if headers_first:
            await exchange.send_head(200, {"Content-Length": str(len(PNG))})
            await exchange.send(PNG[:10])
        await asyncio.sleep(30)

    server.routes["/slow.png"] = slow
    fetcher = fetchers.make(allow_private=True, timeout_s=0.3)
    started = time.monotonic()

    with pytest.raises(ImageFetchFailed, match="took over") as caught:
        await fetcher.fetch(server.url("/slow.png") + SECRET_QUERY)

    assert 0.25 < time.monotonic() - started < 2
    assert "SECRET" not in caught.value.message


async def test_concurrent_fetches_of_one_url_share_one_request(
    fetchers: Fetchers, server: LocalServer
) -> None:
    url = serve_png(server, delay_s=0.2)
    fetcher = fetchers.make(allow_private=True)

    bodies = await asyncio.gather(*(fetcher.fetch(url) for _ in range(5)))
    again = await fetcher.fetch(url)

    assert bodies == [PNG] * 5
    assert again == PNG
    assert server.hits["/cat.png"] == 2


async def test_a_url_queued_in_one_client_s_share_keeps_no_other_client_waiting(
    fetchers: Fetchers, server: LocalServer
) -> None:
    url = serve_png(server)
    slow_url = serve_png(server, "/slow.png", delay_s=1.5)
    fetcher = fetchers.make(allow_private=True, per_client=1)

    async def fetch_as(client: str, target: str) -> float:
        open_record(RequestRecord(client=client))  # this task's own record
        await fetcher.fetch(target)
        return time.monotonic()

    started = time.monotonic()
    slow = asyncio.create_task(fetch_as("greedy", slow_url))
    await asyncio.sleep(0.05)  # the greedy client's only slot is taken
    queued = asyncio.create_task(fetch_as("greedy", url))  # waits for that slot
    await asyncio.sleep(0.05)
    other = await fetch_as("other", url)

    assert other - started < 0.8  # not behind the greedy client's slow fetch
    assert not queued.done()
    assert await queued - started >= 1.5
    await slow
    assert server.hits["/cat.png"] == 2  # one fetch for each client


async def test_a_shared_failure_names_each_callers_part(
    fetchers: Fetchers, server: LocalServer
) -> None:
    async def missing(exchange: Exchange) -> None:
        await asyncio.sleep(0.1)
        await exchange.respond(404)

    server.routes["/gone.png"] = missing
    fetcher = fetchers.make(allow_private=True)
    params = [f"messages[0].content[{j}].image_url" for j in range(3)]

    results = await asyncio.gather(
        *(fetcher.fetch(server.url("/gone.png"), param) for param in params),
        return_exceptions=True,
    )

    assert [type(result) for result in results] == [ImageFetchFailed] * 3
    assert [getattr(result, "param", None) for result in results] == params
    assert server.hits["/gone.png"] == 1
