"""Browsing on a machine without Node: `firecrawl-mcp` cannot start, so Shine calls the Firecrawl API directly
with firecrawl-py (`FirecrawlAPIBrowser`), against the same local Firecrawl fake over real HTTP. The browse
tools give the same answers and the same errors as through `firecrawl-mcp`, behind the same cache, breaker
and address rules."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.types import CallToolResult

from shine_mcp.config import Settings
from shine_mcp.integrations.firecrawl import FirecrawlAPIBrowser, FirecrawlMCPBrowser, browser_from_settings
from tests.browse.conftest import firecrawl_processes, shine
from tests.fakes.firecrawl_api import FakeFirecrawl
from tests.support.postgres import free_port

NPX = ["npx", "-y", "firecrawl-mcp"]  # the default command: what a shop without Node cannot run
SEARCH = {"query": "glass skin", "limit": 5}
PAGES = [
    "https://glowlab.example/products/niacinamide-10-serum?utm_source=mail",
    "https://shop.beautyjournal.example/p/barrier-cream",
    "https://deals.miracleskin.example/item/miracle-serum",
    "https://glowlab.example/no/such/page",
]


def strip_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH without any directory that holds `node` or `npx`."""
    kept = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not any((Path(d) / name).exists() for name in ("node", "npx"))
    ]
    monkeypatch.setenv("PATH", os.pathsep.join(kept))


@pytest.fixture
def without_node(monkeypatch: pytest.MonkeyPatch) -> None:
    strip_node(monkeypatch)


def _text(result: CallToolResult) -> str:
    return json.dumps(result.model_dump(mode="json"))


async def _answers(settings: Settings) -> list[Any]:
    async with shine(settings) as app:
        calls = [("browse_web_images", SEARCH), ("browse_web_images", {"query": "dewy skin", "limit": 3})]
        calls += [("read_product_page", {"url": url}) for url in PAGES]
        results = [await app.client.call_tool(tool, arguments) for tool, arguments in calls]
    return [(r.is_error, r.structured_content if not r.is_error else _text(r)) for r in results]


async def test_without_node_the_direct_client_is_chosen(
    browse_settings: Callable[..., Settings], without_node: None
) -> None:
    assert isinstance(browser_from_settings(browse_settings(firecrawl_command=NPX)), FirecrawlAPIBrowser)
    # With Node there (the tests' own node binary, by its full path), the MCP server stays the way.
    assert isinstance(browser_from_settings(browse_settings()), FirecrawlMCPBrowser)


async def test_the_browse_tools_answer_the_same_without_node(
    browse_settings: Callable[..., Settings],
    fake_firecrawl: FakeFirecrawl,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    through_mcp = await _answers(browse_settings(browse_cache_seconds=0))
    assert len(fake_firecrawl.requests) == len(through_mcp)
    fake_firecrawl.requests.clear()

    strip_node(monkeypatch)
    direct = await _answers(browse_settings(browse_cache_seconds=0, firecrawl_command=NPX))

    assert direct == through_mcp
    assert not any(is_error for is_error, _ in direct[:3])
    assert firecrawl_processes() == []
    assert len(fake_firecrawl.requests) == len(direct)
    assert all(str(r.body.get("origin", "")).startswith("python-sdk@") for r in fake_firecrawl.requests)


async def test_the_direct_client_answers_repeats_from_the_cache(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl, without_node: None
) -> None:
    async with shine(browse_settings(firecrawl_command=NPX)) as app:
        first = await app.client.call_tool("browse_web_images", SEARCH)
        again = await app.client.call_tool("browse_web_images", SEARCH)
    assert first.structured_content is not None and again.structured_content is not None
    assert (first.structured_content["from_cache"], again.structured_content["from_cache"]) == (False, True)
    assert {**again.structured_content, "from_cache": False} == first.structured_content
    assert len(fake_firecrawl.calls("/v2/search")) == 1


async def test_the_direct_client_reads_only_public_pages(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl, without_node: None
) -> None:
    async with shine(browse_settings(firecrawl_command=NPX)) as app:
        result = await app.client.call_tool("read_product_page", {"url": "https://127.0.0.1/admin"})
    assert result.is_error and "Shine reads only public web pages" in _text(result)
    assert fake_firecrawl.requests == []


@pytest.mark.parametrize("node", [True, False], ids=["firecrawl-mcp", "direct"])
async def test_a_down_firecrawl_gives_the_same_clear_error(
    browse_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, node: bool
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = browse_settings(firecrawl_api_url=down)
    if not node:
        strip_node(monkeypatch)
        settings = browse_settings(firecrawl_api_url=down, firecrawl_command=NPX)
    async with shine(settings) as app:
        images = await app.client.call_tool("browse_web_images", SEARCH)
        page = await app.client.call_tool("read_product_page", {"url": PAGES[0]})
    # Three refused attempts (the call and its two retries) open the breaker: the next call is answered at once.
    assert images.is_error and "Firecrawl can't be reached right now" in _text(images)
    assert page.is_error and "Firecrawl is not answering; try again in 30 s" in _text(page)


@pytest.mark.parametrize("node", [True, False], ids=["firecrawl-mcp", "direct"])
async def test_an_unreachable_firecrawl_opens_the_breaker(
    browse_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, node: bool
) -> None:
    """A refused connection is an outage, not a refusal of the request: after the breaker's count of them,
    the next call is answered at once instead of waiting on Firecrawl again."""
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    limits: dict[str, Any] = {
        "firecrawl_breaker_failures": 2,
        "firecrawl_breaker_seconds": 60,
        "firecrawl_retries": 0,
    }
    settings = browse_settings(firecrawl_api_url=down, **limits)
    if not node:
        strip_node(monkeypatch)
        settings = browse_settings(firecrawl_api_url=down, firecrawl_command=NPX, **limits)
    async with shine(settings) as app:
        for query in ("glass skin", "dewy skin"):
            result = await app.client.call_tool("browse_web_images", {"query": query})
            assert "Firecrawl can't be reached right now" in _text(result)
        third = await app.client.call_tool("browse_web_images", {"query": "matte skin"})
    assert third.is_error and "Firecrawl is not answering; try again in" in _text(third)


async def test_the_direct_client_retries_a_server_error_and_reports_out_of_credits(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl, without_node: None
) -> None:
    fake_firecrawl.fail_next("/v2/search", "500")
    fake_firecrawl.fail_next("/v2/scrape", "402")
    async with shine(browse_settings(firecrawl_command=NPX)) as app:
        images = await app.client.call_tool("browse_web_images", SEARCH)
        page = await app.client.call_tool("read_product_page", {"url": PAGES[0]})
    assert not images.is_error, _text(images)
    assert [r.status for r in fake_firecrawl.calls("/v2/search")] == [500, 200]
    assert page.is_error and "Firecrawl is out of credits (402)" in _text(page)
    assert len(fake_firecrawl.calls("/v2/scrape")) == 1


async def test_a_stalled_api_times_out_then_the_breaker_answers_at_once(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl, without_node: None
) -> None:
    fake_firecrawl.stall_seconds = 10
    fake_firecrawl.fail_next("/v2/search", "stall", times=2)
    settings = browse_settings(
        firecrawl_command=NPX,
        firecrawl_timeout=1.0,
        firecrawl_breaker_failures=2,
        firecrawl_breaker_seconds=60,
    )
    async with shine(settings) as app:
        with anyio.fail_after(5):
            first = await app.client.call_tool("browse_web_images", {"query": "glass skin"})
            second = await app.client.call_tool("browse_web_images", {"query": "dewy skin"})
        assert "did not answer within 1 s" in _text(first) and "did not answer within 1 s" in _text(second)
        with anyio.fail_after(0.5):
            third = await app.client.call_tool("browse_web_images", {"query": "matte skin"})
    assert third.is_error and "Firecrawl is not answering; try again in" in _text(third)
    assert len(fake_firecrawl.calls("/v2/search")) == 2


async def test_a_wrong_key_is_refused_clearly_without_echoing_it(
    browse_settings: Callable[..., Settings], without_node: None, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "fc-wrong0key0that0must0not0leak"
    async with shine(browse_settings(firecrawl_command=NPX, firecrawl_api_key=wrong)) as app:
        result = await app.client.call_tool("browse_web_images", SEARCH)
    assert result.is_error and "Firecrawl refused Shine's credentials" in _text(result)
    assert wrong not in _text(result) and wrong not in caplog.text
