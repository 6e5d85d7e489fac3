"""Checkout never holds one pooled connection while it waits for another (issue 20's hung checkout).

Checking out a changed cart closes the older unpaid order: checkout → cancel → the simulated gateway expires
the session → its event is delivered in-process to the webhook handler → the ledger locks and changes the
order. If any step along that path held a connection (or a row lock) while it waited for a second one, a
worker whose pool is all in use by such callers would wait on itself, a deadlock PostgreSQL cannot see.
With a pool of one connection, that wait is certain and shows at once as the pool's timeout."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest
from sqlalchemy.pool import QueuePool

from shine_mcp.store.catalog import demo_catalog_records, upsert_products
from shine_mcp.store.db import open_database
from tests.checkout.conftest import CLEANSER, SERUM, in_own_task, open_shop, shop_settings

pytestmark = pytest.mark.postgres


async def test_closing_an_older_order_at_checkout_needs_one_connection_at_a_time(
    postgres_url: str, tmp_path: Path
) -> None:
    config = shop_settings(tmp_path).model_copy(
        update={"database_url": postgres_url, "load_demo_catalog": False}
    )
    db = await open_database(config)
    await upsert_products(db, demo_catalog_records()[1], source="demo")
    await db.close()
    user = f"usr_{uuid.uuid4().hex[:12]}"
    async with in_own_task(open_shop(config)) as shop:
        engine = shop.services.db.engine.sync_engine
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        # The same pool (its events: the idle ping, the metrics) with a single connection: a second
        # checkout while the first is held waits the pool's timeout, then fails.
        engine.pool = QueuePool(
            pool._creator,
            pool_size=1,
            max_overflow=0,
            timeout=5,
            _dispatch=pool.dispatch,
            dialect=pool._dialect,
        )
        pool.dispose()
        with anyio.fail_after(60):
            await shop.call("add_to_cart", {"product_id": SERUM}, user=user)
            first = await shop.call("checkout", user=user)
            await shop.call("add_to_cart", {"product_id": CLEANSER}, user=user)
            second = await shop.call("checkout", user=user)
            old = await shop.call("get_order", {"order_id": first["order"]["order_id"]}, user=user)
    assert second["replaced_orders"] == [first["order"]["order_id"]]
    assert old["status"] == "cancelled"
