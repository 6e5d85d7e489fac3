"""The store on SQLite and on a throwaway PostgreSQL: migrations, full-text sync, search filters."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from shine_mcp.auth.ratelimit import Limit, RateLimiter
from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.services import Services
from shine_mcp.store.catalog import count_products, get_product, get_products, upsert_products
from shine_mcp.store.db import Database, DatabaseNotOpen, include_object, open_database
from shine_mcp.store.records import ProductIn, product_id_for
from shine_mcp.store.search import SearchFilters, search_products


def record(handle: str, **fields: object) -> ProductIn:
    base: dict[str, object] = {
        "handle": handle,
        "brand": "Testbrand",
        "name": f"Test {handle}",
        "category": "serum",
        "price": Decimal("10.00"),
        "ingredients": "Aqua, Glycerin, Niacinamide",
        "skin_types": ["oily"],
        "concerns": ["acne"],
        "stock": 3,
    }
    base.update(fields)
    return ProductIn.model_validate(base)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        settings = Settings(data_dir=tmp_path, database_url=url)
        database = await open_database(settings)
        async with database.session() as session, session.begin():
            await session.execute(text("DELETE FROM products"))
    else:
        database = await open_database(Settings(data_dir=tmp_path, database_url=None))
    yield database
    await database.close()


async def test_search_sees_inserts_updates_and_deletes(db: Database) -> None:
    await upsert_products(db, [record("alpha", name="Copper Peptide Serum")], source="test")
    found = await search_products(db, SearchFilters(terms=("copper",)), limit=10)
    assert [p.handle for p in found.products] == ["alpha"]

    await upsert_products(db, [record("alpha", name="Azelaic Gel")], source="test")
    assert (await search_products(db, SearchFilters(terms=("copper",)), limit=10)).total == 0
    assert (await search_products(db, SearchFilters(terms=("azelaic",)), limit=10)).total == 1

    await upsert_products(db, [record("beta")], source="test", replace=True)
    assert (await search_products(db, SearchFilters(terms=("azelaic",)), limit=10)).total == 0
    assert await count_products(db) == 1


async def test_reimport_keeps_product_ids(db: Database) -> None:
    await upsert_products(db, [record("gamma", price=Decimal("12.50"))], source="first.json")
    await upsert_products(db, [record("gamma", price=Decimal("9.99"))], source="second.csv")
    product = await get_product(db, product_id_for("gamma"))
    assert product is not None
    assert (product.price_minor, product.source) == (999, "second.csv")


async def test_filters_combine(db: Database) -> None:
    await upsert_products(
        db,
        [
            record("cheap-oily", price=Decimal("8.00"), skin_types=["oily"]),
            record("dear-oily", price=Decimal("80.00"), skin_types=["oily"]),
            record("cheap-dry", price=Decimal("8.00"), skin_types=["dry"], concerns=["dryness"]),
            record("sold-out", price=Decimal("8.00"), stock=0),
            record("perfumed", price=Decimal("8.00"), ingredients="Aqua, Parfum, Linalool"),
        ],
        source="test",
    )
    filters = SearchFilters(
        skin_type="oily",
        max_price_minor=1000,
        currency="USD",
        in_stock_only=True,
        exclude_keys=frozenset({"family:fragrance"}),
    )
    found = await search_products(db, filters, limit=10)
    assert sorted(p.handle for p in found.products) == ["cheap-oily"]


@pytest.mark.parametrize("term", ["retinol OR", '"', "*", "NEAR(", "😀", "a%b_c\\"])
async def test_hostile_terms_do_not_raise(db: Database, term: str) -> None:
    await upsert_products(db, [record("delta")], source="test")
    await search_products(db, SearchFilters(terms=(term,), exclude_substrings=frozenset({term})), limit=5)


async def test_offset_past_the_end_still_reports_the_total(db: Database) -> None:
    await upsert_products(db, [record(f"p{i}") for i in range(3)], source="test")
    page = await search_products(db, SearchFilters(), limit=10, offset=10)
    assert page.products == [] and page.total == 3


async def test_the_sqlite_read_path_returns_what_the_orm_loads(tmp_path: Path) -> None:
    """Search on SQLite reads through its own read-only connections; the products and totals must be
    exactly those the ORM session gives (JSON lists, datetimes, nulls), page by page."""
    database = await open_database(Settings(data_dir=tmp_path, database_url=None))
    assert database.threads is not None
    await upsert_products(
        database,
        [record(f"r{i}", price=Decimal(f"{5 + i}.00"), size=None if i % 2 else "30 ml") for i in range(7)],
        source="test",
    )
    without_reader = database.engine_only()
    cases = [
        (SearchFilters(), 3, 0),
        (SearchFilters(), 3, 3),
        (SearchFilters(terms=("niacinamide",)), 3, 6),
        (SearchFilters(terms=("niacinamide",), max_price_minor=900, currency="USD"), 2, 0),
        (SearchFilters(skin_type="oily"), 10, 20),
    ]
    try:
        for filters, limit, offset in cases:
            fast = await search_products(database, filters, limit=limit, offset=offset)
            orm = await search_products(without_reader, filters, limit=limit, offset=offset)
            assert fast.total == orm.total
            assert fast.products == orm.products
            loaded = await get_products(database, [p.id for p in fast.products])
            assert [dataclasses.asdict(p) for p in fast.products] == [
                loaded[p.id].model_dump() for p in fast.products
            ]
        assert fast.total == 7 and fast.products == []
    finally:
        await database.close()


async def test_units_of_work_commit_or_leave_nothing(db: Database) -> None:
    """`Database.write` runs a synchronous unit on a Core connection (SQLite: the writer thread; PostgreSQL:
    run_sync); what it commits is seen by `read`, what it does not commit is gone."""
    await upsert_products(db, [record("unit", stock=5)], source="test")
    product_id = product_id_for("unit")
    set_stock = text("UPDATE products SET stock = :stock WHERE id = :id")
    read_stock = text("SELECT stock FROM products WHERE id = :id")

    def committed(connection: Connection) -> int:
        connection.execute(set_stock, {"stock": 9, "id": product_id})
        connection.commit()
        return 1

    def abandoned(connection: Connection) -> None:
        connection.execute(set_stock, {"stock": 0, "id": product_id})

    assert await db.write(committed) == 1
    await db.write(abandoned)
    assert await db.read(lambda c: c.execute(read_stock, {"id": product_id}).scalar_one()) == 9
    product = await get_product(db, product_id)
    assert product is not None and product.stock == 9


async def test_migrations_match_the_tables(db: Database) -> None:
    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection, opts={"include_object": include_object})  # type: ignore[arg-type]
        return compare_metadata(context, SQLModel.metadata)

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_upgrading_again_keeps_every_product(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=None)
    first = await open_database(settings)
    await upsert_products(first, [record("kept")], source="test")
    await first.close()
    again = await open_database(settings)
    assert await count_products(again) == 1
    await again.close()


async def test_a_database_used_before_it_is_opened_says_to_open_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    database = Database(Settings(data_dir=data_dir, database_url=None))
    assert not data_dir.exists()  # building it opens nothing
    with pytest.raises(DatabaseNotOpen, match=r"await db\.open\(\)"):
        await count_products(database)
    with pytest.raises(DatabaseNotOpen):
        _ = database.dialect
    await database.close()  # closing what was never opened does nothing


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_opening_twice_keeps_one_engine_and_a_closed_database_opens_again(
    request: pytest.FixtureRequest, tmp_path: Path, dialect: str
) -> None:
    url = request.getfixturevalue("postgres_url") if dialect == "postgresql" else None
    database = Database(Settings(data_dir=tmp_path, database_url=url))
    assert await database.open() is database
    engine = database.engine
    await database.open()
    assert database.engine is engine
    await upsert_products(database, [record("kept")], source="test")
    await database.close()
    await database.close()
    with pytest.raises(DatabaseNotOpen):
        await count_products(database)
    await database.open()
    try:
        assert database.engine is not engine
        assert await count_products(database) == 1
    finally:
        await database.close()


async def test_services_hand_out_their_database_before_it_opens(tmp_path: Path) -> None:
    services = Services(Settings(data_dir=tmp_path, database_url=None, load_demo_catalog=False))
    limiter = RateLimiter(services.db, utcnow)  # built before the app starts, as the server builds it
    limits = [Limit("user:someone:test", 5)]
    with pytest.raises(DatabaseNotOpen):
        await limiter.hit(limits)
    async with services.running():
        assert (await limiter.hit(limits)).allowed
    with pytest.raises(DatabaseNotOpen):  # the last user out closed it
        await limiter.hit(limits)
    async with services.running():  # and the next one opens the same object again
        assert (await limiter.hit(limits)).allowed


async def test_words_within_a_category_count_and_rank_only_that_category(db: Database) -> None:
    await upsert_products(
        db,
        [
            record("in-name", name="Copper Peptide Cream", category="moisturiser"),
            record("in-text", name="Night Cream", category="moisturiser", description="with copper peptides"),
            record("other-category", name="Copper Serum", category="serum"),
            record("no-word", name="Plain Cream", category="moisturiser"),
            record("too-dear", name="Copper Balm", category="moisturiser", price=Decimal("90.00")),
        ],
        source="test",
    )
    found = await search_products(
        db,
        SearchFilters(terms=("copper",), category="moisturiser", max_price_minor=5000, currency="USD"),
        limit=10,
    )
    assert found.total == 2
    assert [p.handle for p in found.products] == ["in-name", "in-text"]  # the name outweighs the description
