"""PostgreSQL's safety nets: no statement of a request waits for ever (issue 20's hung checkout).

A statement stuck behind another connection's row lock is cancelled by the server after
`SHINE_DB_STATEMENT_TIMEOUT_SECONDS`, and the shopper is told the shop is busy and to try again (a
`ToolError` to an MCP client, 503 with `Retry-After` over HTTP), while the pool goes on serving. Work that is
long on purpose is exempt: a process waiting for another's migrations, or for its start-up catalog load,
waits as long as that takes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from shine_mcp.config import Settings
from shine_mcp.store.catalog import demo_catalog_records, upsert_products
from shine_mcp.store.db import (
    MIGRATION_LOCK_KEY,
    POSTGRES_POOL_SIZE,
    STARTUP_LOCK_KEY,
    Database,
    open_database,
)
from tests.checkout.conftest import CLEANSER, FOAMING, SERUM, in_own_task, open_shop, shop_settings

pytestmark = pytest.mark.postgres

TIMEOUT = 1.0  # seconds: the statement and idle-in-transaction timeouts of these tests


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture
async def config(postgres_url: str, tmp_path: Path) -> AsyncIterator[Settings]:
    settings = shop_settings(tmp_path).model_copy(
        update={
            "database_url": postgres_url,
            "load_demo_catalog": False,
            "db_statement_timeout_seconds": TIMEOUT,
            "db_idle_in_transaction_timeout_seconds": TIMEOUT,
        }
    )
    db = await open_database(settings)
    await upsert_products(db, demo_catalog_records()[1], source="demo")
    await db.close()
    yield settings


async def _waited_at_least(url: str, marker: str, seconds: float, *, state: str = "active") -> bool:
    """Whether a backend whose query mentions `marker` has been in `state` for `seconds` (a lock wait, or a
    connection idle inside its transaction)."""
    watcher = await asyncpg.connect(_plain(url))
    try:
        found = await watcher.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE pid <> pg_backend_pid() AND state = $1 AND query LIKE '%' || $2 || '%'
                 AND now() - state_change >= make_interval(secs => $3)""",
            state,
            marker,
            seconds,
        )
        return bool(found)
    finally:
        await watcher.close()


async def _done_or(task: asyncio.Task[Any], url: str, marker: str, state: str) -> bool:
    """The task ended (it failed, when it should have waited), or has waited 3 timeouts in `state`."""
    return task.done() or await _waited_at_least(url, marker, 3 * TIMEOUT, state=state)


async def until(holds: Callable[[], Awaitable[bool]]) -> None:
    """Check `holds` (a state seen in pg_stat_activity) every 50 ms until it does, for 30 s at most."""
    with anyio.fail_after(30):
        while True:
            if await holds():
                return
            await anyio.sleep(0.05)


async def test_a_cart_change_stuck_behind_a_locked_row_is_told_to_try_again_and_the_pool_recovers(
    config: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    user = f"usr_{uuid.uuid4().hex[:12]}"
    async with in_own_task(open_shop(config)) as shop:
        await shop.call("add_to_cart", {"product_id": SERUM}, user=user)
        # Another connection (a stuck write, an operator's session) holds the cart's row.
        holder = await asyncpg.connect(_plain(config.effective_database_url))
        try:
            locked = holder.transaction()
            await locked.start()
            await holder.execute("SELECT 1 FROM carts WHERE user_id = $1 FOR UPDATE", user)
            started = time.monotonic()
            with anyio.fail_after(15):
                refused = await shop.refused("add_to_cart", {"product_id": CLEANSER}, user=user)
            waited = time.monotonic() - started
            await locked.rollback()
        finally:
            await holder.close()
        assert "busy" in refused and "try again" in refused
        assert "Error executing tool add_to_cart: " in refused and len(refused) > len(
            "Error executing tool add_to_cart: "
        )
        assert TIMEOUT * 0.9 <= waited < TIMEOUT + 5
        # The operator's log says why, without the statement or its parameters.
        told = [r.getMessage() for r in caplog.records if r.name == "shine.tools"]
        assert any("past SHINE_DB_STATEMENT_TIMEOUT_SECONDS" in line for line in told), told
        assert not any(user in line for line in told)
        # The pool goes on: every connection it holds works, and the change can simply be made again.
        with anyio.fail_after(30):
            await asyncio.gather(*(shop.call("view_cart", user=user) for _ in range(8)))
            await shop.call("add_to_cart", {"product_id": CLEANSER}, user=user)
            await shop.call("add_to_cart", {"product_id": FOAMING}, user=user)
            cart = await shop.call("view_cart", user=user)
            checked_out = await shop.call("checkout", user=user)
    assert sorted(line["product_id"] for line in cart["lines"]) == sorted([SERUM, CLEANSER, FOAMING])
    assert checked_out["order"]["status"] == "pending"


async def test_a_request_stuck_behind_a_locked_row_gets_503_with_retry_after(config: Settings) -> None:
    async with in_own_task(open_shop(config)) as shop:
        first = await shop.http.get("/api/chat")  # counted: its rate-limit bucket row now exists
        holder = await asyncpg.connect(_plain(config.effective_database_url))
        try:
            locked = holder.transaction()
            await locked.start()
            await holder.execute("SELECT 1 FROM rate_limit_buckets FOR UPDATE")
            with anyio.fail_after(15):
                busy = await shop.http.get("/api/chat")
            await locked.rollback()
        finally:
            await holder.close()
        with anyio.fail_after(15):
            after = await shop.http.get("/api/chat")
    assert first.status_code == 200
    assert busy.status_code == 503 and busy.json()["error"] == "busy"
    assert busy.headers["retry-after"] == "2"
    assert after.status_code == 200


async def test_a_process_waiting_for_anothers_migrations_outlasts_the_statement_timeout(
    config: Settings,
) -> None:
    # Another process is migrating: it holds the migration lock (for longer than the statement timeout).
    holder = await asyncpg.connect(_plain(config.effective_database_url))
    opening: asyncio.Task[Database] | None = None
    try:
        migrating = holder.transaction()
        await migrating.start()
        await holder.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        opening = asyncio.create_task(open_database(config))
        task = opening
        await until(lambda: _done_or(task, config.effective_database_url, str(MIGRATION_LOCK_KEY), "active"))
        await migrating.commit()
        with anyio.fail_after(30):
            db = await opening
    finally:
        await holder.close()
        if opening is not None and not opening.done():
            opening.cancel()
    try:
        async with db.engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await db.close()


async def test_the_start_up_catalog_load_waits_for_another_worker_as_long_as_that_takes(
    config: Settings,
) -> None:
    db = await open_database(config)
    holder = await asyncpg.connect(_plain(config.effective_database_url))
    inside, proceed = anyio.Event(), anyio.Event()

    async def load_once() -> None:
        async with db.one_process_at_a_time():
            inside.set()
            await proceed.wait()  # the demo catalog load, longer than the idle-in-transaction timeout

    url = config.effective_database_url
    try:
        await holder.execute(f"SELECT pg_advisory_lock({STARTUP_LOCK_KEY})")  # another worker is loading
        loading = asyncio.create_task(load_once())
        await until(lambda: _done_or(loading, url, str(STARTUP_LOCK_KEY), "active"))
        await holder.execute(f"SELECT pg_advisory_unlock({STARTUP_LOCK_KEY})")
        # Inside the block, its lock's connection idles in its transaction past the idle timeout.
        await until(lambda: _done_or(loading, url, str(STARTUP_LOCK_KEY), "idle in transaction"))
        assert inside.is_set()
        proceed.set()
        with anyio.fail_after(30):
            await loading  # the lock's connection was neither cancelled nor closed by the server
    finally:
        await holder.close()
        await db.close()


async def test_pooled_connections_carry_the_configured_timeouts_and_pool_size(config: Settings) -> None:
    assert Settings.model_fields["db_pool_size"].default == POSTGRES_POOL_SIZE  # the default is unchanged
    db = await open_database(config.model_copy(update={"db_pool_size": 3}))
    try:
        pool = db.engine.sync_engine.pool
        assert isinstance(pool, QueuePool) and pool.size() == 3
        async with db.engine.connect() as connection:
            shown = (await connection.execute(text("SHOW statement_timeout"))).scalar_one()
            idle = (await connection.execute(text("SHOW idle_in_transaction_session_timeout"))).scalar_one()
        assert (shown, idle) == ("1s", "1s")
    finally:
        await db.close()
    unbounded = config.model_copy(
        update={"db_statement_timeout_seconds": 0, "db_idle_in_transaction_timeout_seconds": 0}
    )
    db = await open_database(unbounded)
    try:
        async with db.engine.connect() as connection:
            shown = (await connection.execute(text("SHOW statement_timeout"))).scalar_one()
            idle = (await connection.execute(text("SHOW idle_in_transaction_session_timeout"))).scalar_one()
        assert (shown, idle) == ("0", "0")
    finally:
        await db.close()


async def test_a_catalog_import_waiting_on_a_locked_product_is_not_cut_short(config: Settings) -> None:
    db = await open_database(config)
    records = demo_catalog_records()[1][:3]
    holder = await asyncpg.connect(_plain(config.effective_database_url))
    importing: asyncio.Task[int] | None = None
    try:
        # A shopper's payment holds a product's row, longer than a request's statement may wait.
        paying = holder.transaction()
        await paying.start()
        await holder.execute("SELECT 1 FROM products WHERE id = $1 FOR UPDATE", records[0].to_row("demo").id)
        importing = asyncio.create_task(upsert_products(db, records, source="demo"))
        task = importing
        await until(lambda: _done_or(task, config.effective_database_url, "products", "active"))
        await paying.rollback()
        with anyio.fail_after(30):
            assert await importing == len(records)
    finally:
        await holder.close()
        if importing is not None and not importing.done():
            importing.cancel()
        await db.close()
