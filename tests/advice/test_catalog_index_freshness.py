"""The recommender's catalog index on several workers sharing one PostgreSQL database: a sale in another
worker (stock going down) reaches this worker's index by re-reading the stock alone, and only a change of
the products themselves (an import, an edit) rebuilds the index."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from shine_mcp.advice.catalog_index import IndexCache
from shine_mcp.config import Settings
from shine_mcp.knowledge import load_knowledge
from shine_mcp.store.catalog import catalog_fingerprint, index_rows, sale_rows, upsert_products
from shine_mcp.store.db import Database, open_database
from shine_mcp.vocabulary import CATEGORIES
from tests.test_store import record

pytestmark = pytest.mark.postgres


@pytest.fixture
async def workers(postgres_url: str, tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    """Two workers' databases: each its own engine and pool on the one PostgreSQL database."""
    this = await open_database(Settings(data_dir=tmp_path / "a", database_url=postgres_url))
    other = await open_database(Settings(data_dir=tmp_path / "b", database_url=postgres_url))
    yield this, other
    await other.close()
    await this.close()


class CountedLoads:
    """The real full read of the ranking columns, counted: each call is a rebuild of the index."""

    def __init__(self, db: Database) -> None:
        self.db, self.calls = db, 0

    async def __call__(self) -> list[tuple[Any, ...]]:
        self.calls += 1
        return await index_rows(self.db)


async def _sell_one(db: Database, product_id: str) -> None:
    """What a payment taken by the other worker leaves in the products table: one unit fewer."""
    async with db.session() as session, session.begin():
        await session.execute(
            text("UPDATE products SET stock = stock - 1 WHERE id = :id"), {"id": product_id}
        )


async def test_a_sale_in_another_worker_reaches_the_index_without_rebuilding_it(
    workers: tuple[Database, Database],
) -> None:
    this, other = workers
    handle = f"fresh-{secrets.token_hex(4)}"
    await upsert_products(this, [record(handle, name=f"Fresh {handle}", stock=3)], source="test")
    loads = CountedLoads(this)
    cache = IndexCache(
        loads,
        lambda: catalog_fingerprint(this),
        load_knowledge(),
        check_every=0.0,
        read_sales=lambda: sale_rows(this),
    )
    index = await cache.get()
    product_id = next(pid for pid, *rest in await index_rows(this) if rest[-2] == f"Fresh {handle}")
    assert int(index.stock[index.position[product_id]]) == 3

    await _sell_one(other, product_id)
    index = await cache.get()

    assert int(index.stock[index.position[product_id]]) == 2
    assert loads.calls == 1  # the stock was re-read; the index was not built again


async def test_an_edit_in_another_worker_rebuilds_the_index(workers: tuple[Database, Database]) -> None:
    this, other = workers
    handle = f"edit-{secrets.token_hex(4)}"
    await upsert_products(this, [record(handle, name=f"Edit {handle}")], source="test")
    loads = CountedLoads(this)
    cache = IndexCache(
        loads,
        lambda: catalog_fingerprint(this),
        load_knowledge(),
        check_every=0.0,
        read_sales=lambda: sale_rows(this),
    )
    await cache.get()

    await upsert_products(other, [record(handle, name=f"Edit {handle}", category="toner")], source="test")
    index = await cache.get()

    product_id = next(pid for pid, *rest in await index_rows(this) if rest[-2] == f"Edit {handle}")
    assert int(index.category[index.position[product_id]]) == CATEGORIES.index("toner")
    assert loads.calls == 2
