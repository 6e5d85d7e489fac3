"""The Streamable HTTP mode, progress notifications and cancellation."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from shine_mcp.config import Settings
from tests.browse.conftest import HttpFirecrawl, firecrawl_processes, shine
from tests.fakes.firecrawl_api import FakeFirecrawl


async def test_a_remote_firecrawl_mcp_over_streamable_http_serves_images(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl, firecrawl_http: HttpFirecrawl
) -> None:
    settings = browse_settings(firecrawl_mcp_url=firecrawl_http.url, firecrawl_command=["/nonexistent"])
    async with shine(settings) as app:
        result = await app.client.call_tool("browse_web_images", {"query": "glass skin", "limit": 4})
        page = await app.client.call_tool(
            "read_product_page", {"url": "https://glowlab.example/products/niacinamide-10-serum"}
        )
        assert firecrawl_processes() == [firecrawl_http.process.pid]  # no local process of Shine's
    assert not result.is_error and result.structured_content and result.structured_content["images"]
    assert not page.is_error and page.structured_content and page.structured_content["name"]
    assert len(fake_firecrawl.calls("/v2/search")) == 1 and len(fake_firecrawl.calls("/v2/scrape")) == 1


async def test_progress_is_reported_while_firecrawl_works(browse_settings: Callable[..., Settings]) -> None:
    messages: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message)

    async with shine(browse_settings()) as app:
        result = await app.client.call_tool(
            "browse_web_images", {"query": "glass skin"}, progress_callback=on_progress
        )
    assert not result.is_error and result.structured_content
    assert (
        "searching the web for images of 'glass skin'" in messages
        and messages[-1] == f"{len(result.structured_content['images'])} images"
    )


async def test_a_cancelled_search_leaves_browsing_usable(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl
) -> None:
    fake_firecrawl.stall_seconds = 10
    fake_firecrawl.fail_next("/v2/search", "stall")
    async with shine(browse_settings()) as app:
        with anyio.move_on_after(20):
            async with anyio.create_task_group() as tg:

                async def search() -> None:
                    await app.client.call_tool("browse_web_images", {"query": "glass skin"})

                tg.start_soon(search)
                await anyio.to_thread.run_sync(fake_firecrawl.stalled.wait, 10)
                tg.cancel_scope.cancel()
        with anyio.fail_after(5):
            after = await app.client.call_tool("browse_web_images", {"query": "dewy skin"})
    assert not after.is_error
