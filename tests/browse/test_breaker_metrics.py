"""The Firecrawl circuit breaker's state on `/metrics`: 0 while Firecrawl answers, 1 once it has failed
often enough to be left alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.advisor.web import shine_web
from tests.browse.conftest import BLOCKED, COMMAND, _need_firecrawl_mcp
from tests.fakes import firecrawl_api
from tests.fakes.firecrawl_api import FakeFirecrawl
from tests.test_observability import samples


def breaker_state(base: str) -> dict[frozenset[tuple[str, str]], float]:
    return samples(httpx.get(f"{base}/metrics").text, "shine_firecrawl_breaker_state")


async def test_metrics_show_the_breaker_open_after_firecrawl_goes_down(
    tmp_path: Path, demo_database_template: Path, fake_firecrawl: FakeFirecrawl
) -> None:
    _need_firecrawl_mcp()
    shutil.copy(demo_database_template, tmp_path / "shine.db")
    fake_firecrawl.fail_next("/v2/search", "500", times=10)
    overrides = {
        "firecrawl_api_key": firecrawl_api.API_KEY,
        "firecrawl_api_url": fake_firecrawl.url,
        "firecrawl_command": COMMAND,
        "browse_blocked_domains": BLOCKED,
        "firecrawl_rate_limit": 0,
        "firecrawl_retries": 0,
        "firecrawl_breaker_failures": 2,
        "firecrawl_breaker_seconds": 600,
    }
    with shine_web(tmp_path, **overrides) as (base, _settings):
        with anyio.fail_after(60):
            async with (
                httpx2.AsyncClient(timeout=60) as http,
                Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
            ):
                first = await client.call_tool("browse_web_images", {"query": "glass skin"})
                closed = await anyio.to_thread.run_sync(breaker_state, base)
                second = await client.call_tool("browse_web_images", {"query": "dewy skin"})
                third = await client.call_tool("browse_web_images", {"query": "matte skin"})
        opened = await anyio.to_thread.run_sync(breaker_state, base)
    assert first.is_error and second.is_error and third.is_error
    assert closed == {frozenset(): 0}  # one failure: still closed
    assert opened == {frozenset(): 1}
    assert len(fake_firecrawl.calls("/v2/search")) == 2  # the third was refused by the open breaker
