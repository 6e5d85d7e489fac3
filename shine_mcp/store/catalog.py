"""Small catalog queries and writes: get, upsert, replace, stats, and the demo catalog on first run."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy import bindparam, case, delete, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from shine_mcp.clock import utcnow
from shine_mcp.store.db import Database, lift_session_time_limits
from shine_mcp.store.generation import Generation
from shine_mcp.store.records import ProductIn
from shine_mcp.store.tables import Product, ProductRow, ProductVariant

DEMO_SOURCE = "demo"


@dataclass(frozen=True)
class CatalogStats:
    products: int
    in_stock: int
    by_category: dict[str, int]
    by_source: dict[str, int]
    currencies: dict[str, int]
    brands: int


_catalog_writes = Generation()


def catalog_generation() -> int:
    """Goes up with every catalog write in this process: caches built from the catalog compare it."""
    return _catalog_writes.value


INDEX_COLUMNS = (
    "id", "category", "price_minor", "currency", "rating", "review_count", "stock",
    "skin_types", "tags", "concerns", "ingredient_keys", "name", "description",
)  # fmt: skip


async def index_rows(db: Database) -> list[tuple[Any, ...]]:
    """Every product's ranking columns, ordered by id (so ties break the same way every time)."""
    table = Product.__table__  # type: ignore[attr-defined]
    query = sa_select(*(table.c[name] for name in INDEX_COLUMNS)).order_by(table.c.id)

    def work(connection: Connection) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in connection.execute(query)]

    return await db.read(work)


async def sale_rows(db: Database) -> list[tuple[str, int, int]]:
    """Every product's (id, price, stock), ordered by id: what a sale changes in a product (its stock, and
    its price when its cheapest variant sold out), without its `updated_at`."""
    table = Product.__table__  # type: ignore[attr-defined]
    query = sa_select(table.c.id, table.c.price_minor, table.c.stock).order_by(table.c.id)

    def work(connection: Connection) -> list[tuple[str, int, int]]:
        return [(row[0], row[1], row[2]) for row in connection.execute(query)]

    return await db.read(work)


async def catalog_fingerprint(db: Database) -> tuple[Any, ...]:
    """Changes when another process imports or edits products, or sells some: (count, last update, stock
    sum). A sale changes the stock sum alone (`refresh_products` leaves `updated_at` as it was)."""
    table = Product.__table__  # type: ignore[attr-defined]
    query = sa_select(func.count(), func.max(table.c.updated_at), func.sum(table.c.stock))

    def work(connection: Connection) -> tuple[Any, ...]:
        return tuple(connection.execute(query).one())

    return await db.read(work)


async def get_product(db: Database, product_id: str) -> Product | None:
    async with db.reading() as session:
        return await session.get(Product, product_id)


async def get_products(db: Database, product_ids: Sequence[str]) -> dict[str, Product]:
    async with db.reading() as session:
        rows = await session.execute(select(Product).where(col(Product.id).in_(list(product_ids))))
        return {p.id: p for p in rows.scalars()}


async def product_ids_like(db: Database, typed: str, limit: int) -> tuple[list[str], int]:
    """For completion: ids that start with `typed`, or of products whose brand and name contain it (case
    aside), ids first then by name; and how many match in all."""
    table = Product.__table__  # type: ignore[attr-defined]
    text = typed.strip().lower()
    by_id = table.c.id.startswith(text, autoescape=True)
    matches = by_id | func.lower(table.c.brand + " " + table.c.name).contains(text, autoescape=True)
    query = sa_select(table.c.id).where(matches).order_by(case((by_id, 0), else_=1), table.c.name, table.c.id)

    def work(connection: Connection) -> tuple[list[str], int]:
        ids = [row[0] for row in connection.execute(query.limit(limit))]
        total = connection.execute(sa_select(func.count()).select_from(table).where(matches)).scalar_one()
        return ids, int(total)

    return await db.read(work)


async def read_products(db: Database, product_ids: Sequence[str]) -> dict[str, ProductRow]:
    """Like `get_products` as plain rows, in one hop to a reader thread: for hot paths that re-check a
    few dozen products."""
    table = Product.__table__  # type: ignore[attr-defined]
    query = sa_select(table).where(table.c.id.in_(list(product_ids)))

    def work(connection: Connection) -> dict[str, ProductRow]:
        return {row.id: ProductRow(**row._mapping) for row in connection.execute(query)}

    return await db.read(work)


async def get_variants(db: Database, product_id: str) -> list[ProductVariant]:
    """A product's variants in the shop's order."""
    query = (
        select(ProductVariant)
        .where(col(ProductVariant.product_id) == product_id)
        .order_by(col(ProductVariant.position), col(ProductVariant.id))
    )
    async with db.reading() as session:
        return list((await session.execute(query)).scalars())


def variants_query(product_ids: Sequence[str]) -> Any:
    """The variants of these products (a page of search results), each product's in the shop's order.
    `search_products(..., with_variants=True)` reads them in the search's own hop or session: on
    PostgreSQL a connection of their own (checkout, ping, BEGIN, ROLLBACK) cost more than the query."""
    table = ProductVariant.__table__  # type: ignore[attr-defined]
    return (
        sa_select(table)
        .where(table.c.product_id.in_(list(product_ids)))
        .order_by(table.c.product_id, table.c.position, table.c.id)
    )


def variants_by_product(rows: Iterable[Any]) -> dict[str, list[ProductVariant]]:
    """The rows of `variants_query`, grouped by product."""
    found: dict[str, list[ProductVariant]] = {}
    for row in rows:
        found.setdefault(row.product_id, []).append(ProductVariant(**row._mapping))
    return found


async def get_variants_by_id(db: Database, variant_ids: Sequence[str]) -> dict[str, ProductVariant]:
    async with db.reading() as session:
        rows = await session.execute(
            select(ProductVariant).where(col(ProductVariant.id).in_(list(variant_ids)))
        )
        return {v.id: v for v in rows.scalars()}


def _refresh_statement() -> Any:
    """Bring a product's price range and stock in line with its variants (after stock moved): one UPDATE
    with correlated subqueries, the same SQL on SQLite and PostgreSQL."""
    variants = ProductVariant.__table__.alias("v")  # type: ignore[attr-defined]
    mine = variants.c.product_id == col(Product.id)
    price = variants.c.price_minor

    def over(aggregate: Any, *where: Any) -> Any:
        return sa_select(aggregate).where(mine, *where).scalar_subquery()

    in_stock = variants.c.stock > 0
    return (
        update(Product)
        .where(col(Product.id) == bindparam("product"))
        .values(
            stock=over(func.coalesce(func.sum(variants.c.stock), 0)),
            price_minor=func.coalesce(
                over(func.min(price), in_stock), over(func.min(price)), Product.price_minor
            ),
            price_max_minor=func.coalesce(
                over(func.max(price), in_stock), over(func.max(price)), Product.price_minor
            ),
        )
    )


REFRESH_PRODUCT = _refresh_statement()


def refresh_products(connection: Connection, product_ids: Sequence[str]) -> None:
    """Inside a caller's transaction: recompute the products' stock and price range from their variants
    (the catalog's change-tracking triggers then tell the search index)."""
    unique = sorted(set(product_ids))
    if unique:
        connection.execute(REFRESH_PRODUCT, [{"product": p} for p in unique])


async def count_products(db: Database) -> int:
    async with db.reading() as session:
        return int((await session.execute(select(func.count()).select_from(Product))).scalar_one())


async def upsert_products(
    db: Database, records: Sequence[ProductIn], *, source: str, replace: bool = False
) -> int:
    """Write all records in one transaction: an import either lands whole or not at all.

    Existing products (same handle) are updated in place, so their ids, and the carts and
    orders that point at them, survive a re-import. `replace` also removes products not in
    `records`.
    """
    rows = [record.to_row(source) for record in records]
    variants = [variant for record in records for variant in record.variant_rows()]
    async with db.session() as session, session.begin():
        await lift_session_time_limits(session)  # 50 000 products take longer than a request may
        existing: dict[str, Product] = {}
        for chunk in _chunks([r.id for r in rows]):
            found = await session.execute(select(Product).where(col(Product.id).in_(chunk)))
            existing.update((p.id, p) for p in found.scalars())
        for row in rows:
            current = existing.get(row.id)
            if current is None:
                session.add(row)
                continue
            for name, value in row.model_dump(exclude={"id", "created_at"}).items():
                setattr(current, name, value)
            current.updated_at = utcnow()
        await session.flush()  # the products first: the variants' foreign key needs them
        await _write_variants(session, [r.id for r in rows], variants)
        if replace:
            keep = {r.id for r in rows}
            stale = [i for i in (await session.execute(select(Product.id))).scalars() if i not in keep]
            for chunk in _chunks(stale):
                await session.execute(delete(ProductVariant).where(col(ProductVariant.product_id).in_(chunk)))
                await session.execute(delete(Product).where(col(Product.id).in_(chunk)))
    _catalog_writes.bump()
    return len(rows)


async def _write_variants(
    session: AsyncSession, product_ids: list[str], variants: list[ProductVariant]
) -> None:
    """Make the products' variants exactly `variants`: same ids are updated (carts pointing at them stay
    valid), new ones added, ones no longer listed removed."""
    existing: dict[str, ProductVariant] = {}
    for chunk in _chunks(product_ids):
        found = await session.execute(select(ProductVariant).where(col(ProductVariant.product_id).in_(chunk)))
        existing.update((v.id, v) for v in found.scalars())
    wanted = {v.id for v in variants}
    for variant_id in [i for i in existing if i not in wanted]:
        await session.delete(existing.pop(variant_id))
    for variant in variants:
        current = existing.get(variant.id)
        if current is None:
            session.add(variant)
            continue
        for name, value in variant.model_dump(exclude={"id"}).items():
            setattr(current, name, value)


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    """Bound the number of bound parameters per statement (SQLite caps them)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


async def remove_source(db: Database, source: str) -> int:
    """Remove every product from one source (the demo catalog once a merchant imports their own)."""
    async with db.session() as session, session.begin():
        await lift_session_time_limits(session)  # a whole imported catalog may go
        ids = select(Product.id).where(col(Product.source) == source)
        await session.execute(delete(ProductVariant).where(col(ProductVariant.product_id).in_(ids)))
        result = await session.execute(delete(Product).where(col(Product.source) == source))
    _catalog_writes.bump()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def catalog_stats(db: Database) -> CatalogStats:
    async with db.reading() as session:

        async def counts(column: Any) -> dict[str, int]:
            rows = await session.execute(sa_select(column, func.count()).group_by(column).order_by(column))
            return {str(key): int(n) for key, n in rows.all()}

        by_category = await counts(Product.category)
        by_source = await counts(Product.source)
        currencies = await counts(Product.currency)
        totals = await session.execute(
            sa_select(
                func.count(),
                func.count(func.distinct(Product.brand)),
                func.sum(case((col(Product.stock) > 0, 1), else_=0)),
            )
        )
        products, brands, in_stock = totals.one()
    return CatalogStats(
        products=int(products),
        in_stock=int(in_stock or 0),
        by_category=by_category,
        by_source=by_source,
        currencies=dict(sorted(currencies.items(), key=lambda kv: -kv[1])),
        brands=int(brands),
    )


async def main_currency(db: Database) -> str:
    async with db.reading() as session:
        row = (
            await session.execute(
                select(Product.currency, func.count())
                .group_by(Product.currency)
                .order_by(func.count().desc())
                .limit(1)
            )
        ).first()
    return row[0] if row else "USD"


def demo_catalog_records() -> tuple[str, list[ProductIn]]:
    """The bundled demo catalog: its notice (prices are indicative) and its products."""
    raw = json.loads(resources.files("shine_mcp.store").joinpath("data/demo_catalog.json").read_text("utf-8"))
    return raw["notice"], [ProductIn.model_validate(item) for item in raw["products"]]


async def ensure_demo_catalog(db: Database) -> int:
    """Load the demo catalog when the catalog is empty; a merchant's own catalog is never touched."""
    if await count_products(db):
        return 0
    _notice, records = demo_catalog_records()
    return await upsert_products(db, records, source=DEMO_SOURCE)
