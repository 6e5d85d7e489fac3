"""recommend_products and build_routine on a 50 000-product catalog, through the in-process MCP client.

Run: `make bench` (or `.venv/bin/python benchmarks/bench_recommend.py [--products N]`).
Target (issue #4): under 20 ms median for either tool. The baseline, measured in the same run, is a
plain `search_products` call for the same concern: how much the advice costs over a catalog lookup.
The catalog index is built once (its build time is printed) and then reused, as in a running server.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_search import build_catalog, p95, timed  # a sibling script: same catalog generator
from mcp import Client

from shine_mcp.auth.identity import identity_meta
from shine_mcp.server import build_server
from shine_mcp.services import Services
from shine_mcp.store.catalog import index_rows
from shine_mcp.store.profiles import rate, save_profile

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("search_products (baseline)", "search_products", {"query": "", "concerns": ["redness"]}),
    ("recommend: one concern", "recommend_products", {"concerns": ["redness"]}),
    ("recommend: profile + report-free limits", "recommend_products", {"category": "serum"}),
    (
        "recommend: budget, 20 results",
        "recommend_products",
        {"concerns": ["acne"], "budget": 30, "limit": 20},
    ),
    ("build_routine: minimal", "build_routine", {"concerns": ["acne"]}),
    ("build_routine: complete, budget", "build_routine", {"style": "complete", "budget": 150}),
]


async def add_people(services: Services, product_ids: list[str], people: int) -> None:
    """Shoppers with profiles and ratings, so the collaborative signal has neighbours to read."""
    rng = random.Random(11)
    for n in range(people):
        user = f"usr_bench_{n}"
        await save_profile(
            services.db,
            user,
            {
                "skin_type": rng.choice(["dry", "oily", "combination", "normal"]),
                "concerns": ["redness", "acne"],
            },
        )
        for product in rng.sample(product_ids, 8):
            await rate(services.db, user, product, rng.randint(1, 5), None)


async def main(count: int, runs: int, people: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        settings = await build_catalog(Path(tmp), count)
        print(f"built a {count}-product catalog in {time.perf_counter() - started:.1f} s")
        services = Services(settings)
        rows = []
        async with services.running(), Client(build_server(settings, services)) as client:
            ids = [row[0] for row in await index_rows(services.db)]
            await add_people(services, ids[:2000], people)
            me = "usr_bench_me"
            await save_profile(
                services.db,
                me,
                {
                    "skin_type": "dry",
                    "concerns": ["redness"],
                    "avoid_ingredients": ["fragrance", "shea"],
                    "pregnant_or_nursing": True,
                    "preferences": ["vegan"],
                    "country": "AU",
                },
            )
            for product in ids[:5]:
                await rate(services.db, me, product, 5, None)
            meta = identity_meta(me, settings)
            started = time.perf_counter()
            first = await client.call_tool("recommend_products", {"concerns": ["redness"]}, meta=meta)
            assert not first.is_error, first.content
            print(f"first call (builds the catalog index): {(time.perf_counter() - started) * 1000:.0f} ms\n")
            cold = iter(range(10**9))

            async def someone_new_each_call() -> object:
                """No cached neighbourhood: each call reads what ~300 similar people rated."""
                person = identity_meta(f"usr_bench_{next(cold) % people}", settings)
                result = await client.call_tool("recommend_products", {"concerns": ["acne"]}, meta=person)
                assert not result.is_error, result.content
                return result

            rows.append(("recommend: a different person each call", await timed(someone_new_each_call, runs)))
            for name, tool, arguments in CASES:

                async def call(tool: str = tool, arguments: dict[str, Any] = arguments) -> object:
                    result = await client.call_tool(tool, arguments, meta=meta)
                    assert not result.is_error, result.content
                    return result

                rows.append((name, await timed(call, runs)))

    baseline = statistics.median(next(samples for name, samples in rows if "baseline" in name))
    print("| call | median (ms) | p95 (ms) | ÷ search_products |")
    print("|---|---|---|---|")
    for name, samples in rows:
        median = statistics.median(samples)
        print(f"| {name} | {median:.2f} | {p95(samples):.2f} | {median / baseline:.2f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--people", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.products, args.runs, args.people))
