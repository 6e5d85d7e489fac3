"""Broad word searches on PostgreSQL rank a shortlist and count up to a cap, and still show the products the
full ranking (every match ranked and counted, the query before the shortlist) puts first."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import event, text
from sqlalchemy import select as sa_select

from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services
from shine_mcp.store.catalog import demo_catalog_records, get_variants, upsert_products
from shine_mcp.store.db import Database, open_database
from shine_mcp.store.search import COUNT_CAP, SearchFilters, _postgres_query, query_terms, search_products
from shine_mcp.store.tables import Product, ProductRow
from tests.support.pg_wire import counting_relay
from tests.support.tracing import spans_into_memory

pytestmark = pytest.mark.postgres

PRODUCTS = 6000  # enough for a common word to match well over COUNT_CAP products


async def build(settings: Settings) -> None:
    """The benchmark's catalog shape: the demo products renamed and repriced, with their ratings."""
    db = await open_database(settings)
    async with db.session() as session, session.begin():
        await session.execute(text("DELETE FROM products"))
    _notice, demo = demo_catalog_records()
    rng = random.Random(7)
    records = [
        demo[i % len(demo)].model_copy(
            update={
                "handle": f"{demo[i % len(demo)].handle}-{i}",
                "name": f"{demo[i % len(demo)].name} {rng.choice(['Plus', 'Pro', 'Lite', ''])} {i}",
                "price": Decimal(rng.randint(500, 12000)) / 100,
                "stock": rng.randint(0, 50),
            }
        )
        for i in range(PRODUCTS)
    ]
    await upsert_products(db, records, source="test")
    await db.close()


@pytest.fixture(scope="module")
def built(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("pg"), database_url=postgres_url)
    asyncio.run(build(settings))
    return settings


@pytest.fixture
async def catalog(built: Settings) -> AsyncIterator[Database]:
    db = await open_database(built)
    yield db
    await db.close()


async def fully_ranked(
    db: Database, filters: SearchFilters, *, limit: int, offset: int
) -> tuple[list[str], int]:
    """Ids and total from the query that ranks and counts every match."""
    params: dict[str, object] = {"limit": limit, "offset": offset}
    query = _postgres_query(filters, params)
    async with db.session() as session:
        rows = (await session.execute(text(query.page), params)).all()
    return [str(row[0]) for row in rows], int(rows[0][1]) if rows else 0


# niacinamide, hyaluronic: named by some products, listed by many; several words at once; glycerin: named by
# none, described by some, listed by most; tocopherol: only listed (the popularity shortlist); plus: named by
# more than COUNT_CAP.
@pytest.mark.parametrize(
    "words", ["niacinamide", "hyaluronic", "hyaluronic acid serum", "glycerin", "tocopherol", "plus"]
)
async def test_a_broad_search_shows_what_ranking_every_match_shows_first(
    catalog: Database, words: str
) -> None:
    filters = SearchFilters(terms=tuple(query_terms(words)))
    expected, matches = await fully_ranked(catalog, filters, limit=20, offset=0)
    assert matches > COUNT_CAP  # the shortlist is what is under test

    first = await search_products(catalog, filters, limit=10)
    second = await search_products(catalog, filters, limit=10, offset=10)

    assert [p.id for p in first.products + second.products] == expected
    assert (first.total, first.more) == (COUNT_CAP, True)


async def test_a_narrow_search_is_ranked_and_counted_whole(catalog: Database) -> None:
    filters = SearchFilters(
        terms=("hyaluronic",), category="moisturiser", max_price_minor=3000, currency="USD"
    )
    expected, matches = await fully_ranked(catalog, filters, limit=10, offset=0)
    assert 10 < matches <= COUNT_CAP

    found = await search_products(catalog, filters, limit=10)

    assert [p.id for p in found.products] == expected
    assert (found.total, found.more) == (matches, False)


# The pages cross from one tier to the next; panthenol: named by a few (the first statement's page runs out).
@pytest.mark.parametrize("word", ["glycerin", "tocopherol", "panthenol"])
async def test_pages_of_a_broad_search_neither_repeat_nor_skip(catalog: Database, word: str) -> None:
    filters = SearchFilters(terms=(word,))
    assert (await search_products(catalog, filters, limit=1)).more
    seen: list[str] = []
    for offset in range(0, 100, 20):
        seen += [p.id for p in (await search_products(catalog, filters, limit=20, offset=offset)).products]
    whole = await search_products(catalog, filters, limit=100)
    assert seen == [p.id for p in whole.products]
    assert len(set(seen)) == 100


# Named by some products and matching fewer than COUNT_CAP in all: counted as the named ones and the others.
@pytest.mark.parametrize("word", ["centella", "peptide", "ceramide"])
async def test_a_word_named_by_some_and_matching_few_is_counted_and_ranked_whole(
    catalog: Database, word: str
) -> None:
    filters = SearchFilters(terms=(word,))
    expected, matches = await fully_ranked(catalog, filters, limit=10, offset=0)
    async with catalog.session() as session:
        named = (
            await session.execute(
                text("SELECT count(*) FROM products WHERE name_vector @@ to_tsquery('english', :w)"),
                {"w": word},
            )
        ).scalar_one()
    assert 10 < named < matches <= COUNT_CAP

    found = await search_products(catalog, filters, limit=10)

    assert [p.id for p in found.products] == expected
    assert (found.total, found.more) == (matches, False)


async def test_the_search_tool_says_when_more_products_match_than_it_counted(built: Settings) -> None:
    services = Services(built)
    async with services.running(), Client(build_server(built, services)) as client:
        result = await client.call_tool("search_products", {"query": "niacinamide", "limit": 5})
    assert not result.is_error, result.content
    found = result.structured_content
    assert found is not None
    assert found["total"] == COUNT_CAP
    assert found["notice"] is not None and f"More than {COUNT_CAP:,} products match" in found["notice"]


async def test_a_search_tool_call_reads_the_page_and_its_shades_over_one_connection(built: Settings) -> None:
    services = Services(built)
    checkouts: list[object] = []
    async with services.running(), Client(build_server(built, services)) as client:
        arguments = {"query": "niacinamide serum", "limit": 5}
        await client.call_tool("search_products", arguments)  # reads the brands and the currency once
        event.listen(services.db.engine.sync_engine, "checkout", lambda *args: checkouts.append(args))
        result = await client.call_tool("search_products", arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None and result.structured_content["products"]
    assert len(checkouts) == 1


async def test_the_search_vector_ranked_for_every_match_is_kept_in_the_product_row(catalog: Database) -> None:
    """Storage MAIN: the toaster moves the other long values out of a row before this one (0999e)."""
    async with catalog.session() as session:
        storage = (
            await session.execute(
                text(
                    "SELECT attstorage::text FROM pg_attribute "
                    "WHERE attrelid = 'products'::regclass AND attname = 'search_vector'"
                )
            )
        ).scalar_one()
    assert storage == "m"


async def test_a_narrowed_word_search_is_answered_by_one_statement(built: Settings, tmp_path: Path) -> None:
    """With filters, few products match: the name tier (read first for a brand) would be a wasted query."""
    filters = SearchFilters(
        terms=("hyaluronic",), category="moisturiser", max_price_minor=3000, currency="USD"
    )
    async with counting_relay(str(built.database_url)) as (url, sent):
        db = await open_database(Settings(data_dir=tmp_path, database_url=url))
        try:
            sent.clear()
            found = await search_products(db, filters, limit=10)
        finally:
            await db.close()

    assert found.products and not found.more
    assert sent.statements == 1  # the counted page, its rows and their shades: one statement


async def test_a_filtered_word_search_matching_more_than_the_cap_still_shows_the_best_first(
    catalog: Database,
) -> None:
    filters = SearchFilters(terms=("plus",), in_stock_only=True)
    expected, matches = await fully_ranked(catalog, filters, limit=20, offset=0)
    assert matches > COUNT_CAP

    first = await search_products(catalog, filters, limit=10)
    second = await search_products(catalog, filters, limit=10, offset=10)

    assert [p.id for p in first.products + second.products] == expected
    assert (first.total, first.more) == (COUNT_CAP, True)


@pytest.mark.parametrize(
    "arguments",
    [
        {
            "query": "hyaluronic",
            "category": "moisturiser",
            "skin_type": "dry",
            "max_price": 25,
        },  # counted whole
        {"query": "cerave"},  # more than COUNT_CAP products name it
        {"category": "sunscreen", "max_price": 20},  # filters only
        {"query": "niacinamide"},  # named by some, listed by more than COUNT_CAP: the first page
    ],
)
async def test_a_search_tool_call_is_one_statement_outside_any_transaction(
    built: Settings, tmp_path: Path, arguments: dict[str, object]
) -> None:
    """No BEGIN or ROLLBACK around it, no ping before it: one round trip, and when its statement is
    prepared (every fifth word search on a connection: `test_a_word_search_is_parsed_once_in_five_runs`)
    one to parse it and one to close the statement it replaces."""
    async with counting_relay(str(built.database_url)) as (url, sent):
        settings = built.model_copy(update={"database_url": url, "data_dir": tmp_path})
        services = Services(settings)
        async with services.running(), Client(build_server(settings, services)) as client:

            async def search() -> None:
                result = await client.call_tool("search_products", {**arguments, "limit": 10})
                assert not result.is_error, result.content
                assert result.structured_content is not None and result.structured_content["products"]

            await search()  # reads the brands and the currency once
            for _ in range(6):
                sent.clear()
                await search()
                assert sent.statements == 1
                assert sent.queries == []  # no BEGIN / ROLLBACK (simple queries), no ping (';')
                assert sent.round_trips <= 1 + 2 * sent.parsed


async def test_a_word_search_is_parsed_once_in_five_runs(built: Settings, tmp_path: Path) -> None:
    """Planned with its words every time (`test_a_word_search_is_planned_with_its_words_every_time`) at
    the price of a parse every fifth run: parsing it for every search cost ~1 ms a search."""
    async with counting_relay(str(built.database_url)) as (url, sent):
        db = await open_database(Settings(data_dir=tmp_path, database_url=url))
        try:
            sent.clear()
            for _ in range(10):  # one after the other: on one pooled connection
                await search_products(db, SearchFilters(terms=("niacinamide",)), limit=10, with_variants=True)
        finally:
            await db.close()
    assert (sent.statements, sent.parsed) == (10, 2)


async def test_a_word_search_is_planned_with_its_words_every_time(catalog: Database) -> None:
    """A prepared statement gets a generic plan from its sixth run, one for any words: it computes
    to_tsquery again for every row it filters or ranks and misjudges how many rows the words match (a
    word search took 8 ms instead of 4 ms at 50 000 products)."""
    for words in ("niacinamide", "cerave", "glycerin"):
        for _ in range(8):
            await search_products(catalog, SearchFilters(terms=(words,)), limit=10, with_variants=True)
    async with AsyncExitStack() as stack:
        pooled = catalog.engine.sync_engine.pool.checkedin()  # type: ignore[attr-defined]
        connections = [await stack.enter_async_context(catalog.engine.connect()) for _ in range(pooled)]
        generic = [
            row
            for connection in connections
            for row in await connection.execute(
                text(
                    "SELECT generic_plans, statement FROM pg_prepared_statements "
                    "WHERE statement LIKE '%to_tsquery(%' AND generic_plans > 0 "
                    "AND statement NOT LIKE '%pg_prepared_statements%'"
                )
            )
        ]
    assert generic == []


async def test_the_rows_and_shades_read_with_a_page_are_those_the_store_reads_one_by_one(
    catalog: Database,
) -> None:
    for filters in (SearchFilters(terms=("cerave",)), SearchFilters(category="serum", max_price_minor=4000)):
        found = await search_products(catalog, filters, limit=20, with_variants=True)
        assert found.products and found.variants is not None
        table = Product.__table__  # type: ignore[attr-defined]
        async with catalog.session() as session:
            for product in found.products:
                row = (await session.execute(sa_select(table).where(table.c.id == product.id))).one()
                assert product == ProductRow(**row._mapping)
        for product in found.products:
            expected = await get_variants(catalog, product.id)
            assert [v.model_dump() for v in found.variants[product.id]] == [v.model_dump() for v in expected]
            assert expected  # every product has at least one variant


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this process (once set, it stays: the global provider can be set only once), into
    memory for this test."""
    memory = spans_into_memory()
    yield memory
    memory.shutdown()


async def test_a_traced_search_shows_its_statement_as_a_database_span(
    catalog: Database, spans: InMemorySpanExporter
) -> None:
    """The search's statements go to asyncpg without SQLAlchemy, whose events give other statements their
    spans: they get theirs too, with no SQL and no words in them."""
    for filters in (SearchFilters(terms=("niacinamide",)), SearchFilters(category="serum")):
        spans.clear()
        await search_products(catalog, filters, limit=10, with_variants=True)
        database = [s for s in spans.get_finished_spans() if s.name.startswith("db ")]
        assert [(s.name, dict(s.attributes or {})) for s in database] == [
            ("db SELECT", {"db.system.name": "postgresql", "db.operation.name": "SELECT"})
        ]


async def _pooled_drivers(db: Database) -> list[Any]:
    """The asyncpg connections in the pool (all of them, checked out at once)."""
    async with AsyncExitStack() as stack:
        pooled = db.engine.sync_engine.pool.checkedin()  # type: ignore[attr-defined]
        connections = [await stack.enter_async_context(db.engine.connect()) for _ in range(pooled)]
        return [(await c.get_raw_connection()).driver_connection for c in connections]


async def test_a_search_cancelled_inside_its_snapshot_leaves_no_connection_in_a_transaction(
    catalog: Database,
) -> None:
    """A page past the first tier of a broad search reads its tiers in one REPEATABLE READ transaction,
    begun on the asyncpg connection: SQLAlchemy knows nothing of it, so the search itself must end it,
    even when cancelled (a shopper who went away), or the pool hands the next request a connection inside
    an old snapshot."""
    filters = SearchFilters(terms=("glycerin",))  # named by none: the page at 20 is in the later tiers
    await search_products(catalog, filters, limit=20, offset=20)  # the pool holds the connections it used
    with anyio.CancelScope() as scope:

        def cancel_once_begun(record: Any) -> None:
            if record.query.startswith("BEGIN"):
                scope.cancel()  # the search is then inside its transaction, at its next statement

        drivers = await _pooled_drivers(catalog)
        for driver in drivers:
            driver.add_query_logger(cancel_once_begun)
        try:
            await search_products(catalog, filters, limit=20, offset=20)
        finally:
            for driver in drivers:
                driver.remove_query_logger(cancel_once_begun)
    assert scope.cancelled_caught
    assert [d.is_in_transaction() for d in await _pooled_drivers(catalog)] == [False] * len(drivers)
    found = await search_products(catalog, filters, limit=20, offset=20)  # and the pool serves on
    assert len(found.products) == 20
