"""The photo fetcher: public addresses only (checked at connect time, after every redirect), https only,
size, time and content-type limits. Real private addresses for the policy; a local HTTPS fake for the rest."""

from __future__ import annotations

import ipaddress
import ssl

import anyio
import pytest
from mcp import Client

from shine_mcp.integrations.image_fetch import FetchRefused, ImageFetcher
from shine_mcp.integrations.public_http import AddressPolicy
from shine_mcp.services import Services
from tests.fakes.dns import answering
from tests.fakes.image_host import FakeImageHost

from .conftest import call, call_error, count

PhotoHost = tuple[FakeImageHost, str]


async def refusal(fetcher: ImageFetcher, url: str) -> str:
    with pytest.raises(FetchRefused) as caught:
        await fetcher.fetch(url)
    return caught.value.message


async def test_the_photo_is_fetched_from_an_allowed_host(
    loopback_fetcher: ImageFetcher, photo_host: PhotoHost, hopper_bytes: bytes
) -> None:
    host, url = photo_host
    assert await loopback_fetcher.fetch(f"{url}/photo.jpg") == hopper_bytes
    assert await loopback_fetcher.fetch(f"{url}/untyped") == hopper_bytes
    assert host.user_agents[0].startswith("Shine/")


async def test_the_default_policy_never_connects_to_this_machine(
    photo_host: PhotoHost, trusting_test_ca: ssl.SSLContext
) -> None:
    host, url = photo_host
    fetcher = ImageFetcher(max_bytes=1_000_000, timeout=10, ssl_context=trusting_test_ca)
    assert "loopback" in await refusal(fetcher, f"{url}/photo.jpg")
    assert host.paths == []


async def test_a_host_with_any_private_address_is_refused_even_with_a_public_one(
    trusting_test_ca: ssl.SSLContext,
) -> None:
    fetcher = ImageFetcher(
        max_bytes=1_000_000,
        timeout=10,
        resolver=answering(**{"photos.example": ["93.184.216.34", "10.0.0.7"]}),
        ssl_context=trusting_test_ca,
    )
    message = await refusal(fetcher, "https://photos.example/me.jpg")
    assert "photos.example resolves to 10.0.0.7, a private network address" in message


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("::ffff:10.0.0.1", "private network"),  # IPv4-mapped
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of the cloud metadata address
        ("64:ff9b:1::808:808", "local-use NAT64"),
        ("239.255.255.250", "multicast"),
        ("ff0e::1", "multicast"),
        ("fec0::1", "site-local"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ],
)
async def test_a_host_resolving_to_a_hidden_inside_address_is_refused(
    trusting_test_ca: ssl.SSLContext, address: str, reason: str
) -> None:
    fetcher = ImageFetcher(
        max_bytes=1_000_000,
        timeout=5,
        resolver=answering(**{"photos.example": [address]}),
        ssl_context=trusting_test_ca,
    )
    message = await refusal(fetcher, "https://photos.example/me.jpg")
    assert f"photos.example resolves to {ipaddress.ip_address(address)}, " in message and reason in message
    assert "send the photo itself" in message


async def test_a_redirect_to_a_private_address_is_refused_at_connect_time(
    loopback_fetcher: ImageFetcher, photo_host: PhotoHost
) -> None:
    host, url = photo_host
    port = url.rsplit(":", 1)[1]
    for target, reason in (
        ("https://10.0.0.1/x.jpg", "private network"),
        (f"https://[::1]:{port}/photo.jpg", "loopback"),
        (f"https://127.0.0.2:{port}/photo.jpg", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ):
        host.paths.clear()
        message = await refusal(loopback_fetcher, f"{url}/redirect?to={target}")
        assert reason in message
        assert host.paths == ["/redirect"]


async def test_a_redirect_within_the_host_is_followed(
    loopback_fetcher: ImageFetcher, photo_host: PhotoHost, hopper_bytes: bytes
) -> None:
    host, url = photo_host
    assert await loopback_fetcher.fetch(f"{url}/redirect?to=/photo.jpg") == hopper_bytes
    assert host.paths == ["/redirect", "/photo.jpg"]


async def test_a_redirect_to_plain_http_is_refused(
    loopback_fetcher: ImageFetcher, photo_host: PhotoHost
) -> None:
    host, url = photo_host
    plain = url.replace("https://", "http://")
    message = await refusal(loopback_fetcher, f"{url}/redirect?to={plain}/photo.jpg")
    assert "(redirected) uses http" in message
    assert host.paths == ["/redirect"]


async def test_a_redirect_loop_ends(loopback_fetcher: ImageFetcher, photo_host: PhotoHost) -> None:
    host, url = photo_host
    assert "redirects more than 5 times" in await refusal(loopback_fetcher, f"{url}/loop")
    assert len(host.paths) == 6


async def test_a_web_page_is_not_taken_for_a_photo(
    loopback_fetcher: ImageFetcher, photo_host: PhotoHost
) -> None:
    _, url = photo_host
    assert "leads to a web page, not a photo" in await refusal(loopback_fetcher, f"{url}/page.html")


async def test_a_missing_photo_reports_the_status(
    loopback_fetcher: ImageFetcher, photo_host: PhotoHost
) -> None:
    _, url = photo_host
    assert "answered 404" in await refusal(loopback_fetcher, f"{url}/missing.jpg")


async def test_a_body_over_the_limit_is_cut_off_with_or_without_a_declared_length(
    photo_host: PhotoHost, trusting_test_ca: ssl.SSLContext
) -> None:
    host, url = photo_host
    fetcher = ImageFetcher(
        max_bytes=200_000,
        timeout=10,
        policy=AddressPolicy.allowing(["127.0.0.1/32"]),
        ssl_context=trusting_test_ca,
    )
    host.big_size = 200_001
    for path in ("/big", "/big-declared"):
        assert "larger than 0.191 MB" in await refusal(fetcher, f"{url}{path}")
    host.big_size = 200_000
    assert len(await fetcher.fetch(f"{url}/big")) == 200_000


async def test_a_compressed_body_is_refused_rather_than_unpacked(
    loopback_fetcher: ImageFetcher, photo_host: PhotoHost
) -> None:
    _, url = photo_host
    assert "compressed (gzip)" in await refusal(loopback_fetcher, f"{url}/compressed.jpg")


async def test_a_stalled_download_ends_at_the_time_limit(
    photo_host: PhotoHost, trusting_test_ca: ssl.SSLContext
) -> None:
    host, url = photo_host
    fetcher = ImageFetcher(
        max_bytes=1_000_000,
        timeout=0.5,
        policy=AddressPolicy.allowing(["127.0.0.1/32"]),
        ssl_context=trusting_test_ca,
    )
    with anyio.fail_after(10):
        assert "longer than 0.5 s" in await refusal(fetcher, f"{url}/stall.jpg")
    host.release.set()


async def test_an_untrusted_certificate_is_refused(photo_host: PhotoHost) -> None:
    host, url = photo_host
    fetcher = ImageFetcher(max_bytes=1_000_000, timeout=10, policy=AddressPolicy.allowing(["127.0.0.1/32"]))
    assert "did not present a valid certificate" in await refusal(fetcher, f"{url}/photo.jpg")
    assert host.paths == []


async def test_analyze_skin_reads_a_photo_from_an_https_url(
    url_client: Client, services: Services, photo_host: PhotoHost
) -> None:
    _, url = photo_host
    report = await call(url_client, "analyze_skin", {"image": f"{url}/photo.jpg"})
    assert report["image"]["format"] == "jpeg"
    assert await count(services, "local") == 1


async def test_analyze_skin_refuses_a_web_page_url_and_stores_nothing(
    url_client: Client, services: Services, photo_host: PhotoHost
) -> None:
    _, url = photo_host
    message = await call_error(url_client, "analyze_skin", {"image": f"{url}/page.html"})
    assert "web page" in message
    assert await count(services, "local") == 0


async def test_a_cancelled_analysis_stops_its_download_and_stores_nothing(
    url_client: Client, services: Services, photo_host: PhotoHost
) -> None:
    host, url = photo_host
    # a tool that ignored the cancel would hang here (the host only finishes once released, below)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                url_client.call_tool, "analyze_skin", {"image": f"{url}/stall.jpg", "keep_photo": True}
            )
            assert await anyio.to_thread.run_sync(host.stalled.wait, 10.0, abandon_on_cancel=True)
            tasks.cancel_scope.cancel()  # the in-process call runs in this task: this is the client cancelling
    host.release.set()
    assert await count(services, "local") == 0
    # the server is still serving, and the photo host is untouched by the cancelled call
    assert (await call(url_client, "list_skin_reports", {}))["total"] == 0
