"""The pieces under the browse tools, without Firecrawl: URL rules, picture identity, the breaker, the cache."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from shine_mcp.clock import utcnow
from shine_mcp.integrations.firecrawl import BrowseError, CircuitBreaker
from shine_mcp.services import Services
from shine_mcp.store import web_cache
from shine_mcp.tools._web_safety import (
    UnsafeUrl,
    image_identity,
    normalise_url,
    public_http_url,
    refuse_private_name,
)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://glowlab.example/x",
        "http://192.168.1.10/",
        "http://[fd00::1]/",
        "http://2130706433/",
        "http://intranet/",
        "https://nas.home.arpa/",
        "http://[::ffff:10.0.0.1]/",  # IPv4-mapped
        "http://[::ffff:7f00:1]:8080/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64 of the cloud metadata address
        "http://[2002:c0a8:101::1]/",  # 6to4 of 192.168.1.1
        "http://224.0.0.1/",  # multicast
        "http://[ff0e::1]/",
        "http://[fec0::1]/",  # site-local
        "http://127.1/",  # legacy spellings of 127.0.0.1
        "http://0x7f.0.0.1/",
        "http://100.64.0.1/",  # carrier-grade NAT
    ],
)
def test_addresses_that_are_not_public_web_pages_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        public_http_url(url)


def test_one_page_has_one_spelling() -> None:
    assert (
        normalise_url("HTTPS://Glowlab.Example:443/p?utm_source=x&b=2&a=1#top")
        == "https://glowlab.example/p?a=1&b=2"
    )


def test_renditions_of_one_picture_share_an_identity() -> None:
    assert image_identity("https://cdn.example.com/a/look-1200x800.jpg") == image_identity(
        "http://cdn.example.com/a/look-300x200.jpg"
    )
    assert image_identity("https://i.example.com/x.jpg?w=1600") == image_identity(
        "https://i.example.com/x.jpg?w=400&utm_campaign=feed"
    )
    assert image_identity("https://i.example.com/x.jpg") != image_identity("https://i.example.com/y.jpg")


def test_the_breaker_opens_after_repeated_failures_and_probes_once() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=2, reset_after=30, clock=lambda: now[0])
    breaker.failed()
    breaker.before_call()  # one failure: still closed
    breaker.failed()
    with pytest.raises(BrowseError, match="try again in 30 s"):
        breaker.before_call()
    now[0] = 31.0
    breaker.before_call()  # the probe
    with pytest.raises(BrowseError):
        breaker.before_call()  # only one probe at a time
    breaker.failed()
    assert breaker.state == "open"
    now[0] = 62.0
    breaker.before_call()
    breaker.succeeded()
    assert breaker.state == "closed"


async def test_cached_answers_expire(services: Services) -> None:
    async with services.running():
        key = web_cache.cache_key("image_search", {"query": "glass skin"})
        assert key == web_cache.cache_key("image_search", {"query": "glass skin"})
        await web_cache.put(services.db, key, "image_search", {"images": [1]}, ttl_seconds=60)
        assert await web_cache.get(services.db, key) == {"images": [1]}
        later = utcnow() + timedelta(seconds=61)
        assert await web_cache.get(services.db, key, now=later) is None


async def test_a_name_pointing_inside_the_network_is_refused_before_firecrawl_sees_it() -> None:
    names = {
        "wiki.shop-intranet.com": ["10.0.0.5"],
        "cdn.shop.com": ["93.184.216.34"],
        "v6.shop.com": ["fe80::1%eth0"],
        "mapped.shop.com": ["93.184.216.34", "::ffff:127.0.0.1"],
        "nat64.shop.com": ["64:ff9b::a00:5"],
        "multicast.shop.com": ["239.255.255.250"],
    }

    async def resolve(host: str) -> list[str]:
        if host == "slow.shop.com":
            await anyio.sleep(5)
        if host not in names:
            raise OSError("Name or service not known")
        return names[host]

    with pytest.raises(UnsafeUrl, match="private network"):
        await refuse_private_name("https://wiki.shop-intranet.com/admin", resolve)
    for name in ("v6", "mapped", "nat64", "multicast"):
        with pytest.raises(UnsafeUrl, match="private network"):
            await refuse_private_name(f"https://{name}.shop.com/", resolve)
    await refuse_private_name("https://cdn.shop.com/p/serum", resolve)  # public: fine
    await refuse_private_name("https://unknown.example/p", resolve)  # unresolvable here: Firecrawl decides
    with anyio.fail_after(2):
        await refuse_private_name("https://slow.shop.com/p", resolve, within=0.2)  # no hang
