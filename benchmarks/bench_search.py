"""Search on a 50 000-product catalog: raw FTS5 in plain sqlite3 vs the store vs the whole MCP tool call.

Run: `make bench` (or `.venv/bin/python benchmarks/bench_search.py [--products N]`).
Targets (issue #2): store search within 1.5x of the raw query; the tool call under 5 ms median.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path

from mcp import Client

from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services
from shine_mcp.store.catalog import demo_catalog_records, upsert_products
from shine_mcp.store.db import open_database
from shine_mcp.store.search import SearchFilters, search_products


# (tool arguments, equivalent store filters, hand-written raw SQL + params)
def raw_sql(term: str, where: str = "1 = 1") -> str:
    """The query one would write by hand: FTS5 hits first (materialised), then the filters."""
    return (
        "WITH hits AS MATERIALIZED (SELECT rowid, bm25(products_fts, 8.0, 10.0, 1.0, 3.0) AS rank "
        f"FROM products_fts WHERE products_fts MATCH '\"{term}\"') "
        f"SELECT p.* FROM hits JOIN products p ON p.rowid = hits.rowid WHERE {where} ORDER BY hits.rank LIMIT 10"
    )


# (name, tool arguments, equivalent store filters, hand-written raw SQL)
CASES: list[tuple[str, dict[str, object], SearchFilters, str]] = [
    (
        "ingredient",
        {"query": "niacinamide", "limit": 10},
        SearchFilters(terms=("niacinamide",)),
        raw_sql("niacinamide"),
    ),
    (
        "phrase+filters",
        {"query": "hyaluronic", "category": "moisturiser", "skin_type": "dry", "max_price": 25, "limit": 10},
        SearchFilters(
            terms=("hyaluronic",),
            category="moisturiser",
            skin_type="dry",
            max_price_minor=2500,
            currency="USD",
        ),
        raw_sql(
            "hyaluronic",
            "p.category = 'moisturiser' AND p.skin_types LIKE '%|dry|%' AND p.price_minor <= 2500 AND p.currency = 'USD'",
        ),
    ),
    ("brand", {"query": "cerave", "limit": 10}, SearchFilters(terms=("cerave",)), raw_sql("cerave")),
    (
        "filters only",
        {"category": "sunscreen", "max_price": 20, "limit": 10},
        SearchFilters(category="sunscreen", max_price_minor=2000, currency="USD"),
        "SELECT p.* FROM products p WHERE p.category = 'sunscreen' AND p.price_minor <= 2000 AND p.currency = 'USD' "
        "ORDER BY coalesce(p.rating, 0) * (1.0 - 1.0 / (1 + p.review_count)) DESC LIMIT 10",
    ),
]


def build_catalog_apart(directory: Path, count: int) -> Settings:
    """Build the catalog in a process of its own, so the measuring process starts with a server's heap,
    not with the garbage of 50 000 imported records."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_build_catalog_sync, directory, count).result()


def _build_catalog_sync(directory: Path, count: int) -> Settings:
    return asyncio.run(build_catalog(directory, count))


async def build_catalog(directory: Path, count: int) -> Settings:
    settings = Settings(data_dir=directory, database_url=None, load_demo_catalog=False)
    db = await open_database(settings)
    _notice, demo = demo_catalog_records()
    rng = random.Random(7)
    records = []
    for i in range(count):
        base = demo[i % len(demo)]
        records.append(
            base.model_copy(
                update={
                    "handle": f"{base.handle}-{i}",
                    "name": f"{base.name} {rng.choice(['Plus', 'Pro', 'Lite', 'Max', 'Gold', ''])} {i}",
                    "price": Decimal(rng.randint(500, 12000)) / 100,
                    "stock": rng.randint(0, 50),
                }
            )
        )
    await upsert_products(db, records, source="bench")
    await db.close()
    return settings


async def timed(fn: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    return (await timed_in_turns([fn], runs))[0]


async def timed_in_turns(
    fns: list[Callable[[], Awaitable[object]]], runs: int, block: int = 10
) -> list[list[float]]:
    """Samples of each function, taken in turns of `block` runs: a slow spell of this shared machine hits
    them alike, while each block still runs with warm caches (one raw FTS5 query evicts a lot)."""
    samples: list[list[float]] = [[] for _ in fns]
    while len(samples[0]) < runs:
        for fn, taken in zip(fns, samples, strict=True):
            for _ in range(3):
                await fn()
            for _ in range(min(block, runs - len(taken))):
                start = time.perf_counter()
                await fn()
                taken.append((time.perf_counter() - start) * 1000)
    return samples


def p95(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.95) - 1]


def broad_words(raw: sqlite3.Connection, count: int) -> list[str]:
    """Words in many products (so the first search for each is the expensive kind), most common first."""
    raw.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.words USING fts5vocab(main, products_fts, 'row')")
    rows = raw.execute(
        "SELECT term FROM temp.words WHERE length(term) > 3 AND term GLOB '[a-z]*' ORDER BY doc DESC LIMIT ?",
        (count,),
    ).fetchall()
    return [r[0] for r in rows]


async def index_upkeep(services: Services, raw: sqlite3.Connection, runs: int) -> dict[str, list[float]]:
    """What the cached parts cost when they are not cached: a word searched for the first time (FTS5's
    bm25 over all its matches, once), a search right after a sale (one row re-read), and the first
    search after an import (the whole index rebuilt)."""
    db = services.db
    first_word_raw, first_word_store = [], []
    for word in broad_words(raw, runs):
        start = time.perf_counter()
        raw.execute(raw_sql(word)).fetchall()
        first_word_raw.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        await search_products(db, SearchFilters(terms=(word,)), limit=10)
        first_word_store.append((time.perf_counter() - start) * 1000)
    after_sale = []
    in_stock = SearchFilters(terms=("niacinamide",), in_stock_only=True)
    await search_products(db, in_stock, limit=10)
    for i in range(runs):
        with raw:
            raw.execute("UPDATE products SET stock = ? WHERE rowid = ?", (i % 7, 1 + i))
        start = time.perf_counter()
        await search_products(db, in_stock, limit=10)
        after_sale.append((time.perf_counter() - start) * 1000)
    after_import = []
    for _ in range(max(3, runs // 10)):
        with raw:  # a text edit is structural: every bm25 score moves
            raw.execute("UPDATE products SET name = name || '' WHERE rowid = 1")
        start = time.perf_counter()
        await search_products(db, in_stock, limit=10)
        after_import.append((time.perf_counter() - start) * 1000)
    return {
        "first search for a broad word: raw FTS5 query": first_word_raw,
        "first search for a broad word: store": first_word_store,
        "search right after a sale (stock change)": after_sale,
        "first search after an import (index rebuilt)": after_import,
    }


def print_upkeep(upkeep: dict[str, list[float]]) -> None:
    print("| index upkeep | median / p95 (ms) |")
    print("|---|---|")
    for name, samples in upkeep.items():
        print(f"| {name} | {statistics.median(samples):.2f} / {p95(samples):.2f} |")
    print()


async def main(count: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        settings = build_catalog_apart(Path(tmp), count)
        print(f"built a {count}-product catalog in {time.perf_counter() - started:.1f} s\n")
        raw = sqlite3.connect(settings.data_dir / "shine.db")
        services = Services(settings)
        rows = []
        async with services.running(), Client(build_server(settings, services)) as client:
            for name, arguments, filters, sql in CASES:

                async def raw_query(sql: str = sql) -> object:
                    return raw.execute(sql).fetchall()

                async def store_query(filters: SearchFilters = filters) -> object:
                    return await search_products(services.db, filters, limit=10)

                async def tool_call(arguments: dict[str, object] = arguments) -> object:
                    result = await client.call_tool("search_products", arguments)
                    assert not result.is_error, result.content
                    return result

                raw_ms, store_ms, tool_ms = await timed_in_turns([raw_query, store_query, tool_call], runs)
                rows.append((name, raw_ms, store_ms, tool_ms))
            upkeep = await index_upkeep(services, raw, runs)
        raw.close()

    print_upkeep(upkeep)
    print(
        "| query | raw FTS5 median / p95 (ms) | store median / p95 (ms) | store ÷ raw | tool call median / p95 (ms) |"
    )
    print("|---|---|---|---|---|")
    for name, raw_ms, store_ms, tool_ms in rows:
        ratio = statistics.median(store_ms) / statistics.median(raw_ms)
        print(
            f"| {name} | {statistics.median(raw_ms):.2f} / {p95(raw_ms):.2f} | "
            f"{statistics.median(store_ms):.2f} / {p95(store_ms):.2f} | {ratio:.2f}x | "
            f"{statistics.median(tool_ms):.2f} / {p95(tool_ms):.2f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.products, args.runs))
