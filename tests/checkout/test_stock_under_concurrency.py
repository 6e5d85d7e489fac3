"""A product's stock is the sum of its variants' however payments interleave on PostgreSQL.

Every payment takes its variants' units and brings the product's total and price range in line in one
statement (`take_stock`). Two payments for different variants of one product lock different variant rows,
so the second's statement starts (and takes its snapshot) before the first commits, then waits for the
product row: the product's figures must come from the variants as they are once it holds that lock, not as
its snapshot saw them, or the first payment's units are counted back into the product's total."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from shine_mcp.config import Settings
from shine_mcp.orders.ledger import take_stock
from shine_mcp.store.catalog import get_variants, refresh_products, upsert_products
from shine_mcp.store.db import Database, open_database
from shine_mcp.store.importers import read_catalog
from shine_mcp.store.orders import OrderLine
from shine_mcp.store.records import product_id_for
from shine_mcp.store.tables import Product
from tests.checkout.conftest import in_own_task, open_shop
from tests.fakes.stripe_api import FakeStripe

pytestmark = pytest.mark.postgres

TEMPLATE = Path(__file__).parents[1] / "fakes" / "fixtures" / "shopify_template.csv"
TINTED = product_id_for("example-tinted-moisturiser")  # 3 shades × 4 sizes, 12 variants


@pytest.fixture
async def db(settings: Settings, postgres_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    opened = await open_database(
        settings.model_copy(update={"database_url": postgres_url, "data_dir": tmp_path / "pg"})
    )
    parsed = read_catalog(TEMPLATE, default_currency="USD")
    await upsert_products(opened, parsed.records, source="import:shopify_template.csv")
    try:
        yield opened
    finally:
        await opened.close()


def line(order_id: str, variant_id: str, quantity: int) -> OrderLine:
    return OrderLine.model_construct(
        order_id=order_id,
        position=0,
        product_id=TINTED,
        variant_id=variant_id,
        brand="Example",
        name="Tinted moisturiser",
        quantity=quantity,
        unit_price_minor=1900,
    )


async def waiting_for_a_lock(db: Database) -> None:
    """Until some other backend of this database waits for a row lock (the second payment's statement)."""
    with anyio.fail_after(10):
        while True:
            async with db.engine.connect() as watcher:
                waiting = await watcher.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                )
            if waiting:
                return
            await asyncio.sleep(0.01)


async def taken(connection: AsyncConnection, lines: list[OrderLine]) -> list[OrderLine]:
    def take(sync: Connection) -> list[OrderLine]:
        short, _refreshed = take_stock(sync, lines)
        return short

    return await connection.run_sync(take)


async def test_payments_for_two_variants_of_one_product_at_once_leave_its_stock_the_sum_of_theirs(
    db: Database,
) -> None:
    variants = [v for v in await get_variants(db, TINTED) if v.stock >= 2][:2]
    assert len(variants) == 2
    async with db.engine.connect() as first, db.engine.connect() as second:
        assert await taken(first, [line("ord_a", variants[0].id, 2)]) == []  # not committed yet
        # The second payment's statement starts now, beside the first's open transaction, and waits for the
        # product row the first one holds.
        racing = asyncio.create_task(taken(second, [line("ord_b", variants[1].id, 1)]))
        await waiting_for_a_lock(db)
        await first.commit()
        assert await racing == []
        await second.commit()

    left = {v.id: v.stock for v in await get_variants(db, TINTED)}
    assert left[variants[0].id] == variants[0].stock - 2
    assert left[variants[1].id] == variants[1].stock - 1
    paid = await figures(db)
    assert paid[0] == sum(left.values())

    def refresh(connection: Connection) -> None:
        refresh_products(connection, [TINTED])
        connection.commit()

    await db.write(refresh)
    assert await figures(db) == paid  # stock and price range as a full refresh computes them


async def figures(db: Database) -> tuple[int, int, int | None]:
    async with db.engine.connect() as connection:
        row = (
            await connection.execute(
                select(Product.stock, Product.price_minor, Product.price_max_minor).where(
                    col(Product.id) == TINTED
                )
            )
        ).one()
    return row.stock, row.price_minor, row.price_max_minor


async def test_payment_webhooks_for_different_variants_in_two_processes_keep_the_products_total(
    stripe_settings: Settings,
    fake_stripe: FakeStripe,
    tmp_path: Path,
    postgres_url: str,
) -> None:
    """The same through the webhook, each payment one statement in autocommit (`paid_at_once`): two Shine
    processes on one database receive payments for two variants of one product at once."""
    config = stripe_settings.model_copy(update={"database_url": postgres_url, "data_dir": tmp_path / "pg"})
    prepared = await open_database(config)
    parsed = read_catalog(TEMPLATE, default_currency="USD")
    await upsert_products(prepared, parsed.records, source="import:shopify_template.csv")
    await prepared.close()
    async with in_own_task(open_shop(config)) as one, in_own_task(open_shop(config)) as two:
        db = one.services.db
        variants = sorted(await get_variants(db, TINTED), key=lambda v: -v.stock)[:2]
        rounds = min(6, *(v.stock for v in variants))
        events = []
        for _ in range(rounds):
            for variant in variants:
                user = f"usr_{uuid.uuid4().hex[:12]}"
                args = {"product_id": TINTED, "variant_id": variant.id, "quantity": 1}
                await one.call("add_to_cart", args, user=user)
                made = await one.call("checkout", user=user)
                events.append(fake_stripe.complete(made["checkout_url"].rsplit("/", 1)[1]))
        # Each process takes every other event: payments for the two variants race in pairs.
        responses = await asyncio.gather(
            *((one if i % 2 else two).webhook(event) for i, event in enumerate(events))
        )
        assert [r.json()["outcome"] for r in responses] == ["applied"] * len(events)
        left = {v.id: v.stock for v in await get_variants(db, TINTED)}
        for variant in variants:
            assert left[variant.id] == variant.stock - rounds
        paid = await figures(db)
        assert paid[0] == sum(left.values())
