"""Lookups on PostgreSQL go without a transaction around them: each statement is one round trip, where
BEGIN, the statement and ROLLBACK were three (and each a wake-up of the server's backend). Counted on the
wire (`tests/support/pg_wire.py`), so whatever sends them is seen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mcp import Client
from sqlalchemy import select, text

from shine_mcp.auth.sessions import create_session, resolve_session
from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services
from shine_mcp.store.db import Database, open_database
from shine_mcp.store.tables import Product
from tests.support.pg_wire import Sent, counting_relay

pytestmark = pytest.mark.postgres


@pytest.fixture
async def relayed(postgres_url: str, tmp_path: Path) -> AsyncIterator[tuple[Settings, Sent]]:
    async with counting_relay(postgres_url) as (url, sent):
        yield Settings(data_dir=tmp_path, database_url=url), sent


async def test_a_lookup_is_one_statement_outside_any_transaction(relayed: tuple[Settings, Sent]) -> None:
    settings, sent = relayed
    db = await open_database(settings)
    try:
        async with db.session() as session, session.begin():
            await session.execute(text("CREATE TABLE probe (n int)"))
            await session.execute(text("INSERT INTO probe VALUES (1)"))
        for _ in range(3):
            sent.clear()
            async with db.reading() as session:
                assert (await session.execute(text("SELECT count(*) FROM probe"))).scalar_one() == 1
            assert sent.statements == 1 and sent.queries == []  # no BEGIN, no ROLLBACK
            sent.clear()
            assert await db.read(lambda c: c.execute(text("SELECT count(*) FROM probe")).scalar_one()) == 1
            assert sent.statements == 1 and sent.queries == []
        # A transaction where one is asked for is still one, and still all-or-nothing.
        sent.clear()
        async with db.session() as session:
            await session.execute(text("INSERT INTO probe VALUES (2)"))
            await session.rollback()
        assert [q.rstrip(";").split()[0] for q in sent.queries] == ["BEGIN", "ROLLBACK"]
        assert await db.read(lambda c: c.execute(text("SELECT count(*) FROM probe")).scalar_one()) == 1
    finally:
        async with db.session() as session, session.begin():  # the cluster is shared by the session's tests
            await session.execute(text("DROP TABLE IF EXISTS probe"))
        await db.close()


async def test_opening_a_product_costs_three_statements_and_no_transaction(
    relayed: tuple[Settings, Sent],
) -> None:
    """The product, the view counted for the caller's advice (one upsert), the product's variants."""
    settings, sent = relayed
    services = Services(settings)
    async with services.running(), Client(build_server(settings, services)) as client:
        async with services.db.reading() as session:
            product_id = (await session.execute(select(Product.id).limit(1))).scalar_one()
        for _ in range(3):
            sent.clear()
            result = await client.call_tool("get_product", {"product_id": product_id})
            assert not result.is_error, result.content
            assert sent.statements == 3 and sent.queries == []


async def test_a_session_slid_in_a_lookup_stays_slid(relayed: tuple[Settings, Sent]) -> None:
    """The one write a lookup may make (sliding a web session's expiry) is a single statement: in
    autocommit it is kept, not rolled back with the lookup."""
    settings, _sent = relayed
    db: Database = await open_database(settings)
    try:
        long_ago = datetime(2026, 1, 1, tzinfo=UTC)
        token, _ = await create_session(db, settings, "gst_0123456789abcdef", now=long_ago, guest=True)
        later = datetime(2026, 1, 3, tzinfo=UTC)
        slid = await resolve_session(db, settings, token, now=later)
        assert slid is not None and slid.slid
        again = await resolve_session(db, settings, token, now=later)
        assert again is not None and not again.slid and again.expires_at == slid.expires_at
    finally:
        await db.close()
