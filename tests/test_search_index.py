"""The in-memory search index answers exactly like the SQL query, and is never stale.

The SQL query (`use_index=False`) is the reference: for hundreds of random searches over a catalog with
tied ratings, several currencies and stock-outs, both must return the same products in the same order
with the same total. Then writes from this process and from another connection (another process, as
far as SQLite can tell) must show in the very next search.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from shine_mcp.config import Settings
from shine_mcp.knowledge import load_knowledge
from shine_mcp.store.catalog import demo_catalog_records, upsert_products
from shine_mcp.store.db import Database, alembic_config, open_database
from shine_mcp.store.search import SearchFilters, SearchResult, _indexes, search_products
from shine_mcp.store.search_index import MAX_ROW_REFRESH, top
from shine_mcp.vocabulary import CATEGORIES, CONCERNS, SKIN_TYPES, TAGS

WORDS = [
    "niacinamide", "hyaluronic", "acid", "cerave", "retinol", "serum", "cream", "gentle", "spf",
    "vitamin", "zinc", "salicylic", "ceramides", "oil", "water", "glycerin", "squalane", "peptide",
    "don't", "café", "OR", "NEAR", "x", "zzzunknown", "12", "aqua",
]  # fmt: skip
EXCLUDED_WORDS = ["fragrance", "retinol", "drying alcohol", "shea", "parfum", "silicone", "essential oil"]


async def build_catalog(directory: Path) -> None:
    db = await open_database(Settings(data_dir=directory, database_url=None, load_demo_catalog=False))
    _notice, demo = demo_catalog_records()
    rng = random.Random(11)
    records = []
    for i in range(1200):
        base = demo[i % len(demo)]
        records.append(
            base.model_copy(
                update={
                    "handle": f"{base.handle}-{i}",
                    "name": f"{base.name} {rng.choice(['Plus', 'Lite', 'Gold', ''])}",
                    "price": Decimal(rng.randint(300, 6000)) / 100,
                    "currency": "EUR" if i % 7 == 0 else "USD",
                    "stock": rng.choice([0, 0, 1, 5, 20]),
                    "rating": rng.choice([None, 4.0, 4.5, 5.0]),
                    "review_count": rng.choice([0, 3, 10, 100]),
                }
            )
        )
    await upsert_products(db, records, source="test")
    await db.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 200 products from the demo catalog, with repeated ratings (ties) and two currencies."""
    directory = tmp_path_factory.mktemp("index")
    asyncio.run(build_catalog(directory))
    return directory


@pytest.fixture
def catalog(built: Path, tmp_path: Path) -> Path:
    """A copy per test: some tests write to it."""
    return Path(shutil.copytree(built, tmp_path / "catalog"))


@pytest.fixture
async def db(catalog: Path) -> AsyncIterator[Database]:
    database = await open_database(Settings(data_dir=catalog, database_url=None, load_demo_catalog=False))
    yield database
    await database.close()


def random_filters(rng: random.Random) -> SearchFilters:
    kb = load_knowledge()
    excluded = rng.sample(EXCLUDED_WORDS, rng.choice([0, 0, 1, 2]))
    keys, substrings = kb.exclusion_terms(excluded)
    priced = rng.random() < 0.4
    return SearchFilters(
        terms=tuple(rng.sample(WORDS, rng.choice([0, 1, 1, 2, 3]))),
        category=rng.choice([None, None, *CATEGORIES]),
        skin_type=rng.choice([None, None, *SKIN_TYPES]),
        concerns=tuple(rng.sample(CONCERNS, rng.choice([0, 0, 1, 2, 3]))),
        max_price_minor=rng.randint(500, 5000) if priced else None,
        currency=rng.choice(["USD", "EUR"]) if priced else None,
        exclude_keys=frozenset(keys),
        exclude_substrings=frozenset(substrings),
        required_tags=tuple(rng.sample(TAGS, rng.choice([0, 0, 0, 1]))),
        in_stock_only=rng.random() < 0.3,
    )


def summary(result: SearchResult) -> tuple[int, list[str]]:
    return result.total, [p.id for p in result.products]


async def both(db: Database, filters: SearchFilters, limit: int = 10, offset: int = 0) -> None:
    indexed = await search_products(db, filters, limit=limit, offset=offset)
    plain = await search_products(db, filters, limit=limit, offset=offset, use_index=False)
    assert summary(indexed) == summary(plain), filters


async def test_the_index_answers_like_the_sql_query(db: Database) -> None:
    rng = random.Random(5)
    nonempty = 0
    for _ in range(300):
        filters = random_filters(rng)
        limit, offset = rng.choice([1, 5, 10, 50]), rng.choice([0, 0, 3, 10, 40])
        indexed = await search_products(db, filters, limit=limit, offset=offset)
        plain = await search_products(db, filters, limit=limit, offset=offset, use_index=False)
        assert summary(indexed) == summary(plain), (filters, limit, offset)
        nonempty += bool(indexed.products)
    assert nonempty > 100  # the random filters are not so strict that everything is empty
    assert db.threads is not None
    snapshot = _indexes[db.threads]._snapshot
    assert snapshot is not None and snapshot.terms and snapshot.masks  # the index really answered


async def test_every_page_of_a_broad_search_matches(db: Database) -> None:
    for filters in (
        SearchFilters(terms=("acid",)),
        SearchFilters(),
        SearchFilters(concerns=("acne", "dryness")),
    ):
        for offset in range(0, 200, 50):
            await both(db, filters, limit=50, offset=offset)


async def test_hostile_words_behave_the_same(db: Database) -> None:
    for words in [('"',), ("retinol", "OR"), ("*",), ("NEAR(",), ("🙂",), ('a"b',), ("don't", "café")]:
        await both(db, SearchFilters(terms=words))


async def test_changes_from_this_process_show_at_once(db: Database) -> None:
    in_stock = SearchFilters(terms=("niacinamide",), in_stock_only=True)
    product = (await search_products(db, in_stock, limit=1)).products[0]
    _notice, demo = demo_catalog_records()
    assert db.threads is not None
    index = _indexes[db.threads]
    words_before = index._snapshot.terms if index._snapshot else None

    # A stock change is a row change: the word scores are kept, the row is re-read.
    def sell_out(connection: Connection) -> None:
        connection.exec_driver_sql("UPDATE products SET stock = 0 WHERE id = ?", (product.id,))
        connection.commit()

    await db.write(sell_out)
    assert product.id not in [p.id for p in (await search_products(db, in_stock, limit=50)).products]
    await both(db, in_stock, limit=50)
    assert index._snapshot is not None and index._snapshot.terms is words_before

    # New text is a structural change: every bm25 score moves, the index rebuilds.
    base = next(r for r in demo if r.category == "serum")
    await upsert_products(
        db, [base.model_copy(update={"handle": "brand-new-1", "name": "Quuxberry Elixir"})], source="t"
    )
    found = await search_products(db, SearchFilters(terms=("quuxberry",)), limit=5)
    assert [p.handle for p in found.products] == ["brand-new-1"]
    await both(db, SearchFilters(terms=("niacinamide",)), limit=20)


async def test_changes_from_another_process_show_at_once(db: Database, catalog: Path) -> None:
    other = sqlite3.connect(catalog / "shine.db")
    try:
        cheap = SearchFilters(category="toner", max_price_minor=400, currency="USD")
        before = await search_products(db, cheap, limit=50)
        target = (
            await search_products(db, SearchFilters(category="toner", in_stock_only=True), limit=1)
        ).products[0]
        with other:
            other.execute("UPDATE products SET price_minor = 123 WHERE id = ?", (target.id,))
        after = await search_products(db, cheap, limit=50)
        assert target.id in [p.id for p in after.products] and after.total == before.total + 1
        await both(db, cheap, limit=50)

        moved = (await search_products(db, SearchFilters(category="mask"), limit=1)).products[0]
        with other:  # a column behind a kept filter mask
            other.execute("UPDATE products SET category = 'toner' WHERE id = ?", (moved.id,))
        assert moved.id in [
            p.id for p in (await search_products(db, SearchFilters(category="toner"), limit=500)).products
        ]
        assert moved.id not in [
            p.id for p in (await search_products(db, SearchFilters(category="mask"), limit=500)).products
        ]

        with other:  # a deletion is structural
            other.execute("DELETE FROM products WHERE id = ?", (target.id,))
        assert target.id not in [p.id for p in (await search_products(db, cheap, limit=50)).products]
        await both(db, SearchFilters(category="toner"), limit=50)
    finally:
        other.close()


async def test_more_changes_than_the_log_keeps_rebuild(db: Database, catalog: Path) -> None:
    await search_products(db, SearchFilters(terms=("serum",)), limit=5)  # the index exists
    other = sqlite3.connect(catalog / "shine.db")
    try:
        with other:  # 5 000 row changes: more than the 4 096 the log keeps, and than a row refresh takes
            for _ in range(5):
                other.execute(
                    "UPDATE products SET stock = stock + 1 WHERE rowid IN (SELECT rowid FROM products LIMIT 1000)"
                )
        assert other.execute("SELECT count(*) FROM catalog_row_changes").fetchone()[0] <= 4096
        with other:
            other.execute(f"UPDATE products SET stock = 0 WHERE rowid <= {MAX_ROW_REFRESH // 2}")
    finally:
        other.close()
    rng = random.Random(8)
    for _ in range(40):
        await both(db, random_filters(rng), limit=20)


def test_top_is_a_partial_lexicographic_sort() -> None:
    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(0, 3000))
        keys = [rng.integers(0, int(rng.integers(1, 6)), n) for _ in range(int(rng.integers(1, 4)))]
        keys.append(rng.permutation(n))  # a unique last key, as ids are
        k = int(rng.integers(1, 120))
        expected = np.lexsort(list(reversed(keys)))[:k]
        assert top(keys, k).tolist() == expected.tolist(), trial


async def test_a_catalog_from_before_the_index_upgrades_whole(catalog: Path) -> None:
    """Take a catalog back to before migration 0110, as an older Shine left it, then open it again."""
    url = f"sqlite:///{catalog / 'shine.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.downgrade(config, "0100_fts_text_updates")  # 0110 and what builds on it
    with engine.connect() as connection:
        tables = {
            r[0] for r in connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        count = connection.exec_driver_sql("SELECT count(*) FROM products").scalar_one()
    engine.dispose()
    assert "catalog_version" not in tables and "skin_reports" in tables and count == 1200

    db = await open_database(Settings(data_dir=catalog, database_url=None, load_demo_catalog=False))
    try:
        assert (await search_products(db, SearchFilters(), limit=1)).total == 1200
        await both(db, SearchFilters(terms=("niacinamide",), skin_type="oily"), limit=20)
    finally:
        await db.close()


async def test_searches_during_writes_from_another_process_only_return_rows_that_pass(
    db: Database, catalog: Path
) -> None:
    """Reader threads race a writer: every page is checked against the rows it returned, which were read
    in the same transaction as the index's freshness check."""
    stop = threading.Event()

    def writer() -> None:
        other = sqlite3.connect(catalog / "shine.db", timeout=10)
        rng = random.Random(3)
        try:
            while not stop.is_set():
                with other:
                    other.execute(
                        "UPDATE products SET stock = ?, price_minor = ? WHERE rowid = ?",
                        (rng.choice([0, 4]), rng.randint(300, 6000), rng.randint(1, 1200)),
                    )
        finally:
            other.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    rng = random.Random(9)
    try:
        for _ in range(20):
            batch = [
                SearchFilters(
                    terms=tuple(rng.sample(["serum", "acid", "cream", "niacinamide"], rng.choice([0, 1]))),
                    category=rng.choice([None, "serum", "moisturiser"]),
                    max_price_minor=rng.choice([None, 2000]),
                    currency="USD",
                    in_stock_only=True,
                )
                for _ in range(8)
            ]
            results = await asyncio.gather(*(search_products(db, f, limit=20) for f in batch))
            for filters, result in zip(batch, results, strict=True):
                for product in result.products:
                    assert product.stock > 0
                    assert filters.category in (None, product.category)
                    assert filters.max_price_minor is None or product.price_minor <= filters.max_price_minor
    finally:
        stop.set()
        thread.join()
    await both(db, SearchFilters(in_stock_only=True, max_price_minor=2000, currency="USD"), limit=50)
