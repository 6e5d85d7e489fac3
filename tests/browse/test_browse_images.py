"""browse_web_images through the real firecrawl-mcp over stdio, against the local Firecrawl fake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.types import CallToolResult

from shine_mcp.config import Settings
from tests.browse.conftest import shine
from tests.fakes.firecrawl_api import FakeFirecrawl


def _images(result: CallToolResult) -> list[dict[str, Any]]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content["images"]


async def test_images_come_deduplicated_attributed_and_best_first(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl
) -> None:
    async with shine(browse_settings()) as app:
        result = await app.client.call_tool("browse_web_images", {"query": "glass skin", "limit": 12})
    images = _images(result)
    urls = [i["image_url"] for i in images]
    # The 1200 px and 600 px renditions are one picture: the larger one is kept.
    assert "https://cdn.glowlab.example/looks/glass-skin-1200x1200.jpg" in urls
    assert not [u for u in urls if "600x600" in u or "w=400" in u]
    assert images[0]["relevance"] == 1.0
    assert all(
        i["source_domain"] and i["attribution"] and i["page_url"].startswith("https://") for i in images
    )
    # The tracking parameter and fragment are gone from page links.
    assert not [i for i in images if "utm_" in i["page_url"] or "#" in i["page_url"]]
    (search,) = fake_firecrawl.calls("/v2/search")
    assert search.body["sources"] == [{"type": "images"}]


async def test_blocked_sites_private_addresses_and_scripts_never_come_back(
    browse_settings: Callable[..., Settings],
) -> None:
    async with shine(browse_settings()) as app:
        result = await app.client.call_tool("browse_web_images", {"query": "glass skin serum", "limit": 30})
    hosts = {i["source_domain"] for i in _images(result)}
    urls = " ".join(i["image_url"] for i in _images(result))
    assert not hosts & {"spamimages.example", "pinimg.example"}
    assert "10.0.0.7" not in urls and "javascript:" not in urls
    assert result.structured_content and result.structured_content["filtered_out"] >= 2


async def test_allowed_sites_restrict_the_search(browse_settings: Callable[..., Settings]) -> None:
    async with shine(browse_settings(browse_sites=["glowlab.example"])) as app:
        everywhere = await app.client.call_tool("browse_web_images", {"query": "skin routine"})
        elsewhere = await app.client.call_tool(
            "browse_web_images", {"query": "skin routine", "sites": ["beautyjournal.example"]}
        )
    assert {i["source_domain"] for i in _images(everywhere)} == {"glowlab.example"}
    assert elsewhere.is_error
    assert "not one of the sites this shop browses: glowlab.example" in str(elsewhere.content)


async def test_a_repeated_query_is_answered_from_the_cache_without_firecrawl(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl
) -> None:
    async with shine(browse_settings()) as app:
        first = await app.client.call_tool("browse_web_images", {"query": "Dewy  glass skin", "limit": 5})
        again = await app.client.call_tool("browse_web_images", {"query": "dewy glass SKIN", "limit": 5})
    assert len(fake_firecrawl.calls("/v2/search")) == 1
    assert first.structured_content and again.structured_content
    assert not first.structured_content["from_cache"] and again.structured_content["from_cache"]
    assert _images(first) == _images(again)


async def test_without_firecrawl_the_tools_say_how_to_enable_browsing(settings: Settings) -> None:
    async with shine(settings) as app:
        images = await app.client.call_tool("browse_web_images", {"query": "glass skin"})
        page = await app.client.call_tool("read_product_page", {"url": "https://glowlab.example/p"})
    for result in (images, page):
        assert result.is_error
        assert "web browsing is not configured: set FIRECRAWL_API_KEY" in str(result.content)
