"""Search on PostgreSQL at 50 000 products: the store's query and the whole MCP tool call, per case of
`bench_search.py`, on a throwaway cluster (as the tests make one).

On PostgreSQL the catalog is searched by PostgreSQL itself: a GIN index on the products' `search_vector`,
the words matched with `to_tsquery` (each word reduced to letters and digits, OR-ed) and ranked by
`ts_rank_cd`; past 1 000 matches the count stops there and only a shortlist is ranked (`store/search.py`,
`_broad`). Each case is one statement per tool call, sent by asyncpg without SQLAlchemy; a statement with
words is prepared anew every fifth run so that PostgreSQL plans it with its words every time (a prepared
statement's generic plan, from its sixth run, computed `to_tsquery` for every row and took about twice as
long). The last column counts what a call sends on the wire, on average: round trips, statements, and
BEGIN, ROLLBACK or a pool ping as simple queries if any. SQLite's in-memory index (`store/search_index.py`) is not used there, so every
worker sees a change the moment it commits, with nothing to invalidate across processes.

The columns split a tool call (`COLUMNS`): the store's query, the tool's own work on top (reading the
words, building the page), the MCP server's dispatch and serialising, and the SDK client's check of the
result against the tool's output schema (jsonschema in pure Python: the larger share of what a call adds to
its query, and a cost of the client, not of the server).

Run: `.venv/bin/python benchmarks/bench_search_pg.py [--products 50000] [--runs 200] [--loop uvloop|asyncio]`
(uvloop, the default, is what `shine serve` runs on).
Target (issue 20): search p95 < 20 ms at 50 000 products (the last column).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp import Client

from benchmarks.bench_load import postgres_cluster
from benchmarks.bench_search import CASES, p95, timed_in_turns
from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services
from shine_mcp.store.catalog import demo_catalog_records, upsert_products
from shine_mcp.store.search import SearchFilters, search_products
from shine_mcp.tools.catalog import CatalogTools

TARGET_P95_MS = 20.0


async def build_catalog(settings: Settings, count: int) -> None:
    """The same catalog `bench_search.py` builds on SQLite: the demo products, renamed and repriced."""
    services = Services(settings)
    _notice, demo = demo_catalog_records()
    rng = random.Random(7)
    records = []
    for i in range(count):
        base = demo[i % len(demo)]
        suffix = rng.choice(["Plus", "Pro", "Lite", "Max", "Gold", ""])
        records.append(
            base.model_copy(
                update={
                    "handle": f"{base.handle}-{i}",
                    "name": f"{base.name} {suffix} {i}",
                    "price": Decimal(rng.randint(500, 12000)) / 100,
                    "stock": rng.randint(0, 50),
                }
            )
        )
    async with services.running():
        await upsert_products(services.db, records, source="bench")
        # Fresh statistics and visibility, as autovacuum leaves a bulk import (VACUUM cannot run in a
        # transaction, and an ANALYZE in one that is rolled back keeps nothing).
        async with services.db.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql("VACUUM ANALYZE products")


async def sent_per_call(settings: Settings, calls: int = 20) -> dict[str, str]:
    """What a warm tool call of each case sends PostgreSQL, on average over `calls` calls, counted on the
    wire by a relay in front of it (`tests/support/pg_wire.py`): round trips and statements. A statement
    with words is prepared anew every fifth run on a connection (so that it is planned with its words), two
    round trips more then: 1.4 a call. BEGIN, ROLLBACK or a pool ping would show as simple queries."""
    from tests.support.pg_wire import counting_relay

    counted = {}
    async with counting_relay(str(settings.database_url)) as (url, sent):
        relayed = settings.model_copy(update={"database_url": url})
        services = Services(relayed)
        async with services.running(), Client(build_server(relayed, services)) as client:
            for name, arguments, _filters, _sql in CASES:
                for _ in range(4):  # warm: the catalog's facts read, every pooled connection used
                    await client.call_tool("search_products", arguments)
                sent.clear()
                for _ in range(calls):
                    await client.call_tool("search_products", arguments)
                extra = f", {len(sent.queries) / calls:.1f} simple queries" if sent.queries else ""
                counted[name] = (
                    f"{sent.round_trips / calls:.1f} ({sent.statements / calls:.1f} statements{extra})"
                )
    return counted


# What each column times (median / p95 ms), all in turns in one process: the store's query as the tool makes
# it (with the page's variants), the tool's function called directly (the query, reading the words, building
# the page), the MCP call without the SDK client's check of the result against the output schema, and the
# whole call as the SDK client makes it (that check is jsonschema in pure Python, ~3 ms for a page of 10:
# the client's cost, which another client may not pay, and no byte of the server's output changes it).
COLUMNS = ("store", "tool function", "MCP call, unchecked", "MCP call (the target's figure)")


async def measure(settings: Settings, runs: int) -> list[tuple[str, str, list[list[float]], str]]:
    services = Services(settings)
    rows = []
    async with services.running(), Client(build_server(settings, services)) as client:
        session = client.session
        tools = CatalogTools(services)

        async def skip_check(_name: str, _result: object) -> None:
            return None

        for name, arguments, filters, _sql in CASES:

            async def store_query(filters: SearchFilters = filters) -> object:
                return await search_products(services.db, filters, limit=10, with_variants=True)

            async def tool_function(arguments: dict[str, Any] = arguments) -> object:
                return await tools.search_products(**arguments)

            async def tool_call(arguments: dict[str, object] = arguments) -> object:
                result = await client.call_tool("search_products", arguments)
                assert not result.is_error, result.content
                return result

            async def unchecked_call(arguments: dict[str, object] = arguments) -> object:
                session.validate_tool_result = skip_check  # type: ignore[method-assign,assignment]
                try:
                    return await tool_call(arguments)
                finally:
                    del session.validate_tool_result

            samples = await timed_in_turns([store_query, tool_function, unchecked_call, tool_call], runs)
            found = await search_products(services.db, filters, limit=10)
            matches = f"{found.total:,}{'+' if found.more else ''}"  # '+': counted no further
            rows.append((name, matches, samples))
    sent = await sent_per_call(settings)
    return [(name, matches, samples, sent[name]) for name, matches, samples in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the event loop of the client and server (uvloop: as under `shine serve`)",
    )
    args = parser.parse_args()
    if args.loop == "uvloop":  # every asyncio.run here then runs on uvloop, as `shine serve` does
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with postgres_cluster() as database, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), database_url=database("shine_search"), load_demo_catalog=False
        )
        started = time.perf_counter()
        asyncio.run(build_catalog(settings, args.products))
        print(
            f"built a {args.products:,}-product catalog on PostgreSQL in {time.perf_counter() - started:.1f} s\n"
        )
        rows = asyncio.run(measure(settings, args.runs))
    print(f"event loop: {args.loop}\n")
    print(
        f"| query | matches | {' | '.join(f'{column} median / p95 (ms)' for column in COLUMNS)} | round trips (statements) per call |"
    )
    print(f"|---|---|{'---|' * len(COLUMNS)}---|")
    for name, matches, samples, sent in rows:
        figures = " | ".join(f"{statistics.median(taken):.2f} / {p95(taken):.2f}" for taken in samples)
        print(f"| {name} | {matches} | {figures} | {sent} |")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\nmachine load average (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")
    worst = max(p95(samples[-1]) for _name, _matches, samples, _sent in rows)
    met = "met" if worst < TARGET_P95_MS else "MISSED"
    print(f"\nworst tool-call p95 {worst:.2f} ms  ·  target < {TARGET_P95_MS:.0f} ms: {met}")


if __name__ == "__main__":
    main()
