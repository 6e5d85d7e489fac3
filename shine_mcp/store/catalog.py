"""Small catalog queries and writes: get, upsert, replace, stats, and the demo catalog on first run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy import case, delete, func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlmodel import col, select

from shine_mcp.store.db import Database
from shine_mcp.store.generation import Generation
from shine_mcp.store.records import ProductIn
from shine_mcp.store.tables import Product, ProductRow, utcnow

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


async def catalog_fingerprint(db: Database) -> tuple[Any, ...]:
    """Changes when another process imports or edits products: (count, last update)."""
    table = Product.__table__  # type: ignore[attr-defined]
    query = sa_select(func.count(), func.max(table.c.updated_at), func.sum(table.c.stock))

    def work(connection: Connection) -> tuple[Any, ...]:
        return tuple(connection.execute(query).one())

    return await db.read(work)


async def get_product(db: Database, product_id: str) -> Product | None:
    async with db.session() as session:
        return await session.get(Product, product_id)


async def get_products(db: Database, product_ids: Sequence[str]) -> dict[str, Product]:
    async with db.session() as session:
        rows = await session.execute(select(Product).where(col(Product.id).in_(list(product_ids))))
        return {p.id: p for p in rows.scalars()}


async def read_products(db: Database, product_ids: Sequence[str]) -> dict[str, ProductRow]:
    """Like `get_products` as plain rows, in one hop to a reader thread: for hot paths that re-check a
    few dozen products."""
    table = Product.__table__  # type: ignore[attr-defined]
    query = sa_select(table).where(table.c.id.in_(list(product_ids)))

    def work(connection: Connection) -> dict[str, ProductRow]:
        return {row.id: ProductRow(**row._mapping) for row in connection.execute(query)}

    return await db.read(work)


async def count_products(db: Database) -> int:
    async with db.session() as session:
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
    async with db.session() as session, session.begin():
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
        if replace:
            keep = {r.id for r in rows}
            stale = [i for i in (await session.execute(select(Product.id))).scalars() if i not in keep]
            for chunk in _chunks(stale):
                await session.execute(delete(Product).where(col(Product.id).in_(chunk)))
    _catalog_writes.bump()
    return len(rows)


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    """Bound the number of bound parameters per statement (SQLite caps them)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


async def remove_source(db: Database, source: str) -> int:
    """Remove every product from one source (the demo catalog once a merchant imports their own)."""
    async with db.session() as session, session.begin():
        result = await session.execute(delete(Product).where(col(Product.source) == source))
    _catalog_writes.bump()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def catalog_stats(db: Database) -> CatalogStats:
    async with db.session() as session:

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
    async with db.session() as session:
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
