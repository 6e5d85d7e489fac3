"""Many people opening the same products at the same moment: every view is counted once, on SQLite and on
PostgreSQL, and none of them fails (views used to be an update-then-insert that raced on PostgreSQL)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from shine_mcp.config import Settings
from shine_mcp.store.db import Database, open_database
from shine_mcp.store.profiles import ProductFeedback, record_view

VIEWS = 40
PEOPLE = 3
PRODUCTS = 2


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def databases(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Database]]:
    """Two handles on one database, as two workers of `shine serve` would hold."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    opened = [await open_database(Settings(data_dir=tmp_path, database_url=url)) for _ in range(2)]
    yield opened
    for database in opened:
        await database.close()


async def view_counts(db: Database, people: list[str]) -> dict[tuple[str, str], int]:
    table = ProductFeedback.__table__  # type: ignore[attr-defined]

    def work(connection: object) -> dict[tuple[str, str], int]:
        rows = connection.execute(  # type: ignore[attr-defined]
            select(table.c.user_id, table.c.product_id, table.c.value).where(
                table.c.user_id.in_(people) & (table.c.kind == "view")
            )
        )
        return {(r.user_id, r.product_id): r.value for r in rows}

    return await db.read(work)


async def test_views_opened_at_the_same_moment_are_all_counted(databases: list[Database]) -> None:
    people = [f"usr_{secrets.token_hex(6)}" for _ in range(PEOPLE)]
    products = [f"prd_view_{n}" for n in range(PRODUCTS)]
    views = [
        record_view(databases[n % len(databases)], person, product)
        for n in range(VIEWS)
        for person in people
        for product in products
    ]
    async with asyncio.timeout(60):
        outcomes = await asyncio.gather(*views, return_exceptions=True)
    failures = [repr(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
    assert failures == []
    assert await view_counts(databases[0], people) == {
        (person, product): VIEWS for person in people for product in products
    }
