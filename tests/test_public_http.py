"""The one guarded way out to the network (`shine_mcp.integrations.public_http`).

A table of hostile URLs and DNS answers that must be refused before any connection, then real local
HTTPS servers for what happens on the wire: which address is connected to when DNS changes its answer,
the host name kept for Host and the certificate, redirects, size and time limits. The local servers are
reached through the test-only allow list (127.0.0.1/32), standing in for a public host."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest

from shine_mcp.integrations.public_http import (
    AddressPolicy,
    PublicHTTP,
    Refused,
    is_public_address,
    refusal_reason,
)
from tests.auth.support import TLSFiles, make_tls, serving
from tests.fakes.dns import ScriptedDNS, answering
from tests.fakes.image_host import FakeImageHost, create_app
from tests.fakes.inside_service import listening
from tests.support.postgres import free_port

PHOTO = b"\xff\xd8\xff\xe0" + b"photo" * 200
LOCAL = AddressPolicy.allowing(["127.0.0.1/32"])

# (url, what photos.test resolves to, the problem, words the refusal must contain)
HOSTILE = [
    pytest.param(
        "https://photos.test/a.jpg",
        ["93.184.216.34", "10.0.0.7"],
        "address",
        "photos.test resolves to 10.0.0.7, a private network address",
        id="one-private-among-public-answers",
    ),
    pytest.param("https://photos.test/", ["127.0.0.1"], "address", "loopback", id="loopback"),
    pytest.param("https://photos.test/", ["::1"], "address", "loopback", id="loopback-v6"),
    pytest.param(
        "https://photos.test/", ["::ffff:127.0.0.1"], "address", "loopback", id="ipv4-mapped-loopback"
    ),
    pytest.param(
        "https://photos.test/", ["::ffff:169.254.169.254"], "address", "link-local", id="ipv4-mapped-metadata"
    ),
    pytest.param(
        "https://photos.test/", ["64:ff9b::a00:1"], "address", "private network", id="nat64-private"
    ),
    pytest.param("https://photos.test/", ["64:ff9b::7f00:1"], "address", "loopback", id="nat64-loopback"),
    pytest.param(
        "https://photos.test/", ["64:ff9b:1::a00:1"], "address", "local-use NAT64", id="nat64-local-use"
    ),
    pytest.param("https://photos.test/", ["2002:7f00:1::1"], "address", "loopback", id="6to4-loopback"),
    pytest.param("https://photos.test/", ["2002:c0a8:101::1"], "address", "private", id="6to4-private"),
    pytest.param(
        "https://photos.test/", ["2001:0:4136:e378:8000:63bf:3fff:fdd2"], "address", "Teredo", id="teredo"
    ),
    pytest.param("https://photos.test/", ["224.0.0.1"], "address", "multicast", id="multicast-v4"),
    pytest.param("https://photos.test/", ["239.255.255.250"], "address", "multicast", id="multicast-ssdp"),
    pytest.param("https://photos.test/", ["ff0e::1"], "address", "multicast", id="multicast-v6-global"),
    pytest.param("https://photos.test/", ["ff02::1"], "address", "multicast", id="multicast-v6-link"),
    pytest.param("https://photos.test/", ["169.254.169.254"], "address", "link-local", id="cloud-metadata"),
    pytest.param("https://photos.test/", ["fe80::1"], "address", "link-local", id="link-local-v6"),
    pytest.param("https://photos.test/", ["fe80::1%eth0"], "address", "link-local", id="link-local-zone"),
    pytest.param("https://photos.test/", ["10.1.2.3"], "address", "private network", id="private-10"),
    pytest.param("https://photos.test/", ["172.16.5.4"], "address", "private network", id="private-172"),
    pytest.param("https://photos.test/", ["192.168.1.1"], "address", "private network", id="private-192"),
    pytest.param("https://photos.test/", ["100.64.0.1"], "address", "carrier-grade NAT", id="cgnat"),
    pytest.param("https://photos.test/", ["0.0.0.0"], "address", "0.0.0.0/8", id="zero"),
    pytest.param("https://photos.test/", ["0.1.2.3"], "address", "0.0.0.0/8", id="this-network"),
    pytest.param("https://photos.test/", ["::"], "address", "unspecified", id="unspecified-v6"),
    pytest.param("https://photos.test/", ["255.255.255.255"], "address", "broadcast", id="broadcast"),
    pytest.param("https://photos.test/", ["240.0.0.1"], "address", "reserved", id="reserved"),
    pytest.param("https://photos.test/", ["fd12:3456::1"], "address", "private network", id="unique-local"),
    pytest.param("https://photos.test/", ["fec0::1"], "address", "site-local", id="site-local"),
    pytest.param("https://photos.test/", ["192.0.2.10"], "address", "documentation", id="doc-v4"),
    pytest.param("https://photos.test/", ["198.51.100.7"], "address", "documentation", id="doc-v4-2"),
    pytest.param("https://photos.test/", ["2001:db8::1"], "address", "documentation", id="doc-v6"),
    pytest.param("https://photos.test/", ["3fff::1"], "address", "documentation", id="doc-v6-new"),
    pytest.param("https://photos.test/", ["198.18.0.1"], "address", "private network", id="benchmarking"),
    pytest.param("https://photos.test/", [], "unresolved", "could not be found", id="no-answer"),
    pytest.param("https://nowhere.test/", [], "unresolved", "could not be found", id="unknown-name"),
    # hosts that are addresses are checked as such, in every spelling, without asking DNS
    pytest.param("https://127.0.0.1/", [], "address", "127.0.0.1 is a loopback", id="literal"),
    pytest.param("https://2130706433/", [], "address", "loopback", id="literal-decimal"),
    pytest.param("https://127.1/", [], "address", "loopback", id="literal-short"),
    pytest.param("https://0x7f.0.0.1/", [], "address", "loopback", id="literal-hex"),
    pytest.param("https://0177.0.0.1/", [], "url", "not a valid URL", id="literal-octal"),
    pytest.param("https://[::ffff:7f00:1]/", [], "address", "loopback", id="literal-mapped"),
    pytest.param("https://[64:ff9b::a9fe:a9fe]/", [], "address", "link-local", id="literal-nat64"),
    pytest.param("https://[ff02::1]:8443/", [], "address", "multicast", id="literal-multicast"),
    # URLs refused before any name is looked up
    pytest.param("http://photos.test/a.jpg", ["93.184.216.34"], "url", "uses http", id="plain-http"),
    pytest.param("ftp://photos.test/a.jpg", ["93.184.216.34"], "url", "must start with https://", id="ftp"),
    pytest.param("file:///etc/passwd", [], "url", "must start with https://", id="file"),
    pytest.param("https:///a.jpg", [], "url", "no host name", id="no-host"),
    pytest.param("https://photos.test:99999/", ["93.184.216.34"], "url", "not a valid URL", id="bad-port"),
    pytest.param(
        "https://me:secret@photos.test/",
        ["93.184.216.34"],
        "credentials",
        "user name or password",
        id="creds",
    ),
]


@pytest.mark.parametrize(("url", "answers", "problem", "words"), HOSTILE)
async def test_hostile_urls_and_dns_answers_are_refused_before_connecting(
    url: str, answers: list[str], problem: str, words: str
) -> None:
    dns = answering(**{"photos.test": answers})
    http = PublicHTTP(resolver=dns)
    with anyio.fail_after(10), pytest.raises(Refused) as caught:
        await http.get(url, max_bytes=1000, timeout=5)
    assert caught.value.problem == problem
    assert words in caught.value.message
    host = urlsplit(url).hostname or ""
    is_name = not host[:1].isdigit() and ":" not in host
    asks_dns = problem not in ("url", "credentials") and is_name
    assert dns.lookups == ([host] if asks_dns else [])


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",  # IPv4-mapped public address
        "64:ff9b::808:808",  # NAT64 of a public address (an IPv6-only network reaching 8.8.8.8)
        "2002:808:808::1",  # 6to4 of a public address
    ],
)
def test_public_addresses_are_public_in_every_spelling(address: str) -> None:
    assert is_public_address(address)
    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("text", ["[::1]", "fe80::1%eth0", "::ffff:10.0.0.1", "224.0.0.1", "photos.test", ""])
def test_text_that_is_not_a_public_address_is_not_public(text: str) -> None:
    assert not is_public_address(text)


def test_an_allow_list_opens_only_the_networks_it_names() -> None:
    assert LOCAL.refusal(ipaddress.ip_address("127.0.0.1")) is None
    for other in ("127.0.0.2", "10.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert LOCAL.refusal(ipaddress.ip_address(other)) is not None
    assert AddressPolicy().refusal(ipaddress.ip_address("127.0.0.1")) is not None


# --- on the wire ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls(Path(tmp_path_factory.mktemp("public-http-tls")))


@pytest.fixture
def test_ca(tls: TLSFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.ca))


@pytest.fixture
def site(tls: TLSFiles) -> Iterator[tuple[FakeImageHost, int]]:
    """The fake photo host over HTTPS on 127.0.0.1 (its certificate names localhost and 127.0.0.1)."""
    host = FakeImageHost(photo=PHOTO)
    port = free_port()
    with serving(create_app(host), port, tls):
        try:
            yield host, port
        finally:
            host.release.set()


def guarded(test_ca: ssl.SSLContext, dns: ScriptedDNS | None = None) -> PublicHTTP:
    return PublicHTTP(policy=LOCAL, resolver=dns or answering(localhost=["127.0.0.1"]), ssl_context=test_ca)


async def test_when_dns_rebinds_the_connection_goes_to_the_address_that_was_checked(
    site: tuple[FakeImageHost, int], test_ca: ssl.SSLContext
) -> None:
    host, port = site
    # The name first answers the allowed address, then an inside one, as a rebinding DNS server does.
    dns = ScriptedDNS({"localhost": [["127.0.0.1"], ["127.0.0.2"]]})
    http = guarded(test_ca, dns)
    with listening("127.0.0.2", port) as inside:
        fetched = await http.get(f"https://localhost:{port}/photo.jpg", max_bytes=10_000, timeout=3)
        assert fetched.body == PHOTO and host.paths == ["/photo.jpg"]
        assert dns.lookups == ["localhost"]  # one answer, checked and used
        with pytest.raises(Refused, match="localhost resolves to 127.0.0.2, a loopback"):
            await http.get(f"https://localhost:{port}/photo.jpg", max_bytes=10_000, timeout=3)
        assert not inside.reached()
    assert host.paths == ["/photo.jpg"]


async def test_the_host_name_is_kept_for_the_host_header_and_the_certificate(
    site: tuple[FakeImageHost, int], test_ca: ssl.SSLContext
) -> None:
    host, port = site
    dns = answering(localhost=["127.0.0.1"], **{"photos.test": ["127.0.0.1"]})
    http = guarded(test_ca, dns)
    await http.get(f"https://localhost:{port}/photo.jpg", max_bytes=10_000, timeout=5)
    assert host.hosts == [f"localhost:{port}"]
    assert host.user_agents[0].startswith("Shine/")
    # The certificate is valid for 127.0.0.1, the address connected to, but not for the name asked for.
    with pytest.raises(Refused) as caught:
        await http.get(f"https://photos.test:{port}/photo.jpg", max_bytes=10_000, timeout=5)
    assert caught.value.problem == "certificate"
    assert "photos.test did not present a valid certificate" in caught.value.message
    assert host.paths == ["/photo.jpg"]


async def test_an_untrusted_certificate_is_refused(site: tuple[FakeImageHost, int]) -> None:
    host, port = site
    http = PublicHTTP(policy=LOCAL, resolver=answering(localhost=["127.0.0.1"]))  # the system's CAs
    with pytest.raises(Refused) as caught:
        await http.get(f"https://localhost:{port}/photo.jpg", max_bytes=10_000, timeout=5)
    assert caught.value.problem == "certificate" and host.paths == []


# (where /redirect sends, how many redirects are allowed, the problem, requests the host saw, DNS lookups)
REDIRECTS = [
    pytest.param(
        "https://inside.test:{port}/photo.jpg",
        5,
        "address",
        ["/redirect"],
        ["localhost", "inside.test"],
        id="to-a-name-resolving-inside",
    ),
    pytest.param(
        "https://[::ffff:127.0.0.1]:{port}/photo.jpg",
        5,
        "address",
        ["/redirect"],
        ["localhost"],
        id="to-a-mapped-spelling-of-an-allowed-address",
    ),
    pytest.param(
        "https://169.254.169.254/latest/meta-data/",
        5,
        "address",
        ["/redirect"],
        ["localhost"],
        id="to-metadata",
    ),
    pytest.param(
        "http://localhost:{port}/photo.jpg", 5, "url", ["/redirect"], ["localhost"], id="downgrade-to-http"
    ),
    pytest.param(
        "https://user:pw@localhost:{port}/photo.jpg",
        5,
        "credentials",
        ["/redirect"],
        ["localhost"],
        id="to-credentials",
    ),
    pytest.param("/photo.jpg", 0, "redirects", ["/redirect"], ["localhost"], id="none-allowed"),
]


@pytest.mark.parametrize(("target", "max_redirects", "problem", "paths", "lookups"), REDIRECTS)
async def test_each_redirect_is_checked_like_the_first_url(
    site: tuple[FakeImageHost, int],
    test_ca: ssl.SSLContext,
    target: str,
    max_redirects: int,
    problem: str,
    paths: list[str],
    lookups: list[str],
) -> None:
    host, port = site
    dns = answering(localhost=["127.0.0.1"], **{"inside.test": ["10.0.0.1"]})
    url = f"https://localhost:{port}/redirect?to={target.format(port=port)}"
    with anyio.fail_after(10), pytest.raises(Refused) as caught:
        await guarded(test_ca, dns).get(url, max_bytes=10_000, timeout=5, max_redirects=max_redirects)
    assert caught.value.problem == problem
    assert host.paths == paths and dns.lookups == lookups


async def test_redirects_within_the_rules_are_followed_and_re_resolved(
    site: tuple[FakeImageHost, int], test_ca: ssl.SSLContext
) -> None:
    host, port = site
    dns = answering(localhost=["127.0.0.1"])
    http = guarded(test_ca, dns)
    url = f"https://localhost:{port}/redirect?to=https://127.0.0.1:{port}/photo.jpg"
    fetched = await http.get(url, max_bytes=10_000, timeout=5)
    assert fetched.body == PHOTO and fetched.url == f"https://127.0.0.1:{port}/photo.jpg"
    assert host.paths == ["/redirect", "/photo.jpg"]
    assert host.hosts == [f"localhost:{port}", f"127.0.0.1:{port}"]


async def test_a_redirect_loop_ends_at_the_bound(
    site: tuple[FakeImageHost, int], test_ca: ssl.SSLContext
) -> None:
    host, port = site
    with pytest.raises(Refused, match="redirects more than 3 times"):
        await guarded(test_ca).get(
            f"https://localhost:{port}/loop", max_bytes=10_000, timeout=5, max_redirects=3
        )
    assert len(host.paths) == 4


async def test_plain_http_only_where_the_caller_allows_it(test_ca: ssl.SSLContext) -> None:
    host = FakeImageHost(photo=PHOTO)
    port = free_port()
    with serving(create_app(host), port):
        url = f"http://localhost:{port}/photo.jpg"
        with pytest.raises(Refused, match="uses http"):
            await guarded(test_ca).get(url, max_bytes=10_000, timeout=5)
        assert host.paths == []
        fetched = await guarded(test_ca).get(url, max_bytes=10_000, timeout=5, https_only=False)
        assert fetched.body == PHOTO
        with pytest.raises(Refused, match="127.0.0.2, a loopback"):
            await PublicHTTP(policy=LOCAL, resolver=answering(localhost=["127.0.0.2"])).get(
                url, max_bytes=10_000, timeout=5, https_only=False
            )


@pytest.mark.parametrize("path", ["/big", "/big-declared"])
async def test_a_body_over_the_limit_is_cut_off(
    site: tuple[FakeImageHost, int], test_ca: ssl.SSLContext, path: str
) -> None:
    host, port = site
    http = guarded(test_ca)
    host.big_size = 200_001
    with pytest.raises(Refused) as caught:
        await http.get(f"https://localhost:{port}{path}", max_bytes=200_000, timeout=5)
    assert caught.value.problem == "too_large" and "larger than 0.191 MB" in caught.value.message
    host.big_size = 200_000
    assert (
        len((await http.get(f"https://localhost:{port}{path}", max_bytes=200_000, timeout=5)).body) == 200_000
    )


async def test_a_compressed_body_is_refused_rather_than_unpacked(
    site: tuple[FakeImageHost, int], test_ca: ssl.SSLContext
) -> None:
    _, port = site
    with pytest.raises(Refused, match=r"compressed \(gzip\)"):
        await guarded(test_ca).get(f"https://localhost:{port}/compressed.jpg", max_bytes=100_000, timeout=5)


async def test_one_deadline_covers_the_whole_fetch(
    site: tuple[FakeImageHost, int], test_ca: ssl.SSLContext
) -> None:
    _, port = site
    with anyio.fail_after(10), pytest.raises(Refused) as caught:
        await guarded(test_ca).get(f"https://localhost:{port}/stall.jpg", max_bytes=100_000, timeout=0.5)
    assert caught.value.problem == "timeout" and "longer than 0.5 s" in caught.value.message


async def test_the_caller_sees_status_and_headers_before_the_body_is_read(
    site: tuple[FakeImageHost, int], test_ca: ssl.SSLContext
) -> None:
    _, port = site
    seen: list[tuple[int, str]] = []

    class NotAPhoto(Exception):
        pass

    def check(response: httpx2.Response) -> None:
        seen.append((response.status_code, response.headers.get("content-type", "")))
        if response.status_code != 200:
            raise NotAPhoto

    with pytest.raises(NotAPhoto):
        await guarded(test_ca).get(
            f"https://localhost:{port}/missing.jpg", max_bytes=100, timeout=5, check=check
        )
    fetched = await guarded(test_ca).get(
        f"https://localhost:{port}/photo.jpg", max_bytes=10_000, timeout=5, check=check
    )
    assert seen == [(404, "text/plain; charset=utf-8"), (200, "image/jpeg")]
    assert fetched.status == 200 and fetched.headers["content-type"] == "image/jpeg"


async def test_proxies_from_the_environment_are_not_used(
    site: tuple[FakeImageHost, int], test_ca: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, port = site
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    fetched = await guarded(test_ca).get(f"https://localhost:{port}/photo.jpg", max_bytes=10_000, timeout=5)
    assert fetched.body == PHOTO
