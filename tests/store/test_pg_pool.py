"""PostgreSQL's pooled connections: a busy connection is not pinged before every use (the pre-ping was three
round trips, BEGIN, ';' and ROLLBACK, on every checkout), one left idle is, a connection the server
dropped is replaced without the shopper seeing an error, and connections opened for a busy moment are kept
for the next one instead of closed and opened again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shine_mcp.config import Settings
from shine_mcp.store.db import Database, create_engine, open_database
from shine_mcp.store.search import SearchFilters, search_products

pytestmark = pytest.mark.postgres


def _plain_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _backend_of(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _drop(url: str, pid: int) -> None:
    """What a server restart or an idle timeout in a proxy does to a pooled connection."""
    killer = await asyncpg.connect(_plain_url(url))
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await killer.close()


@pytest.fixture
async def db(postgres_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    opened = await open_database(Settings(data_dir=tmp_path, database_url=postgres_url))
    yield opened
    await opened.close()


async def test_a_connection_in_use_is_not_pinged_before_each_checkout(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        await _backend_of(engine)  # the pool now holds one connection, just used
        sent: list[str] = []
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            driver.add_query_logger(lambda record: sent.append(record.query))
        # The logger stays on the pooled connection: the next checkout's ping would show as ';'.
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        assert ";" not in sent
        assert "BEGIN;" in sent  # what the logger sees of the statement's own transaction
    finally:
        await engine.dispose()


async def test_a_connection_left_idle_is_pinged_and_replaced_when_the_server_dropped_it(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url, ping_after_idle=0.0)  # every checkout counts as after a long idle
    try:
        first = await _backend_of(engine)
        await _drop(postgres_url, first)
        second = await _backend_of(engine)  # no error: the ping found it dead and the pool opened another
        assert second != first
    finally:
        await engine.dispose()


# Filters alone: a statement asyncpg prepared on the connection; words: one parsed anew for each search.
@pytest.mark.parametrize("filters", [SearchFilters(), SearchFilters(terms=("cream",))])
async def test_a_search_on_a_connection_the_server_dropped_is_answered(
    db: Database, postgres_url: str, filters: SearchFilters
) -> None:
    await search_products(db, filters, limit=3)  # the pool holds the connection it used
    await _drop(postgres_url, await _backend_of(db.engine))

    found = await search_products(db, filters, limit=3)  # read only: retried once on a new connection

    assert found.total >= len(found.products)


async def _backends_at_once(engine: AsyncEngine, count: int) -> set[int]:
    """The backends of `count` connections checked out at the same moment (a burst of requests)."""
    async with AsyncExitStack() as held:
        connections = [await held.enter_async_context(engine.connect()) for _ in range(count)]
        return {
            int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            for connection in connections
        }


async def test_connections_opened_for_a_busy_moment_serve_the_next_one(postgres_url: str) -> None:
    # A new connection costs PostgreSQL a backend (~7 ms of CPU) and the worker asyncpg's set-up (~3 ms);
    # the pool used to close every connection past its fifth as soon as it came back, so each busy moment
    # under load opened them again (3-6 a second in the load benchmark).
    engine = create_engine(postgres_url)
    try:
        first = await _backends_at_once(engine, 12)
        second = await _backends_at_once(engine, 12)
        assert len(first) == 12
        assert second == first
    finally:
        await engine.dispose()
