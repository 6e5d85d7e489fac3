"""A payment event costs the database as few round trips as it can, on both dialects: the order is found,
the event recorded and the payment applied on one connection in one transaction, and on PostgreSQL the
stock rows every payment for a product must lock are written by one statement right before COMMIT.

Each statement of a PostgreSQL transaction is a trip through the worker's event loop, and a row lock lasts
until COMMIT: under load every extra trip is time another worker's payment for the same product waits.
(Measured with benchmarks/bench_load.py: 2 workers handled fewer webhooks a second than 1.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col, select

from shine_mcp.config import Settings
from shine_mcp.store.catalog import demo_catalog_records, get_variants, refresh_products, upsert_products
from shine_mcp.store.db import open_database
from shine_mcp.store.importers import read_catalog
from shine_mcp.store.orders import FulfilmentJob, ProcessedEvent
from shine_mcp.store.records import product_id_for
from shine_mcp.store.tables import Product
from tests.checkout.conftest import SERUM, Shop, in_own_task, open_shop
from tests.fakes.stripe_api import FakeStripe

TEMPLATE = Path(__file__).parents[1] / "fakes" / "fixtures" / "shopify_template.csv"
TINTED = product_id_for("example-tinted-moisturiser")  # 3 shades × 4 sizes, 12 variants
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
HOT = ("UPDATE product_variants", "UPDATE products", "WITH wanted")
PAYMENT_STARTS = ["INSERT INTO processed_events", "UPDATE orders SET"]


@dataclass
class Trips:
    """What reached the database while a block ran: pool checkouts, transactions begun, statements run
    (first three words each) and commits, in order."""

    checkouts: int = 0
    begins: int = 0
    statements: list[str] = field(default_factory=list)

    def unit(self, first: str = "SELECT orders") -> list[str]:
        """The statements of the transaction that recorded the event, from `first` up to its COMMIT."""
        start = next(i for i, s in enumerate(self.statements) if s.startswith(first))
        return self.statements[start : self.statements.index("COMMIT", start) + 1]


@contextmanager
def counted(engines: list[Engine]) -> Iterator[Trips]:
    trips = Trips()

    def checkout(*_args: Any) -> None:
        trips.checkouts += 1

    def begin(_conn: Any) -> None:
        trips.begins += 1

    def executed(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        trips.statements.append(" ".join(statement.split()[:3]))

    def committed(_conn: Any) -> None:
        trips.statements.append("COMMIT")

    hooks = [("checkout", checkout), ("begin", begin), ("before_cursor_execute", executed)]
    hooks.append(("commit", committed))
    for engine in engines:
        for name, hook in hooks:
            event.listen(engine, name, hook)
    try:
        yield trips
    finally:
        for engine in engines:
            for name, hook in hooks:
                event.remove(engine, name, hook)


@asynccontextmanager
async def shop_on(
    backend: str, stripe_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Shop]:
    config = stripe_settings
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
        config = stripe_settings.model_copy(update={"database_url": url, "data_dir": tmp_path / "pg"})
        db = await open_database(config)
        await upsert_products(db, demo_catalog_records()[1], source="demo")
        await db.close()
    async with in_own_task(open_shop(config)) as opened:
        await opened.set_product(SERUM, stock=50)
        yield opened


def engines_of(shop: Shop) -> list[Engine]:
    db = shop.services.db
    return [db.engine.sync_engine] + ([db.threads.engine] if db.threads is not None else [])


async def paid_once(shop: Shop, fake_stripe: FakeStripe) -> tuple[Trips, str]:
    made = await shop.buy(SERUM, 1, user=f"usr_{uuid.uuid4().hex[:12]}")
    completed = fake_stripe.complete(made["checkout_url"].rsplit("/", 1)[1])
    with counted(engines_of(shop)) as trips:
        response = await shop.webhook(completed)
    assert response.status_code == 200 and response.json()["outcome"] == "applied"
    return trips, made["order"]["order_id"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_payment_event_is_one_transaction_and_on_postgresql_one_connection(
    backend: str,
    stripe_settings: Settings,
    fake_stripe: FakeStripe,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    async with shop_on(backend, stripe_settings, tmp_path, request) as shop:
        trips, order_id = await paid_once(shop, fake_stripe)
        assert trips.statements.count("COMMIT") == 1, trips
        # Recorded, marked paid, its lines read, the cart moved on and emptied, the outbox row written,
        # the stock taken (PostgreSQL: with the product's row, in one statement), committed.
        if backend == "postgresql":
            # Finding the order is the transaction's first statement, not a read of its own before it
            # (its own checkout, BEGIN and ROLLBACK): one connection from the pool, one transaction.
            assert trips.checkouts == 1 and trips.begins == 1, trips
            assert trips.unit()[:3] == ["SELECT orders.id, orders.user_id,", *PAYMENT_STARTS], trips
            assert len(trips.unit()) == 9, trips.unit()
        else:
            # SQLite: the order is read on a reader thread beside the one writer thread, which then only
            # writes (a unit there runs alone: reading there too measured slower).
            unit = trips.unit(PAYMENT_STARTS[0])
            assert unit[:2] == PAYMENT_STARTS and len(unit) == 9, unit
        assert (await shop.order(order_id)).status == "paid"
        assert await shop.count(ProcessedEvent, col(ProcessedEvent.order_id) == order_id) == 1
        assert await shop.count(FulfilmentJob, col(FulfilmentJob.order_id) == order_id) == 1


@pytest.mark.postgres
async def test_on_postgresql_the_stock_rows_are_one_statement_right_before_commit(
    stripe_settings: Settings,
    fake_stripe: FakeStripe,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    postgres_url: str,
) -> None:
    async with shop_on("postgresql", stripe_settings, tmp_path, request) as shop:
        stock = await shop.stock(SERUM)
        trips, order_id = await paid_once(shop, fake_stripe)
        unit = trips.unit()
        hot = [i for i, s in enumerate(unit) if s.startswith(HOT)]
        # The variant's and the product's stock in one statement: its locks are held for one round trip
        # (the COMMIT) instead of two or three.
        assert len(hot) == 1 and unit[hot[0] + 1] == "COMMIT", unit
        assert await shop.stock(SERUM) == stock - 1
        assert (await shop.order(order_id)).hold_reason is None


@pytest.mark.postgres
async def test_on_postgresql_paying_several_variants_leaves_the_products_as_a_full_refresh_would(
    stripe_settings: Settings,
    fake_stripe: FakeStripe,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    postgres_url: str,
) -> None:
    async with shop_on("postgresql", stripe_settings, tmp_path, request) as shop:
        db = shop.services.db
        parsed = read_catalog(TEMPLATE, default_currency="USD")
        await upsert_products(db, parsed.records, source="import:shopify_template.csv")
        variants = {v.title: v for v in await get_variants(db, TINTED)}
        user = f"usr_{uuid.uuid4().hex[:12]}"
        # The two cheapest sizes still in stock, every unit of them, and a product of one variant: the
        # tinted moisturiser's price range moves up and its stock down, the serum's stock down by one.
        for title in ("Medium / 15 ml", "Deep / 15 ml"):
            args = {"product_id": TINTED, "variant_id": variants[title].id, "quantity": variants[title].stock}
            await shop.call("add_to_cart", args, user=user)
        await shop.call("add_to_cart", {"product_id": SERUM}, user=user)
        serum = await shop.stock(SERUM)
        made = await shop.call("checkout", user=user)
        with counted(engines_of(shop)) as trips:
            response = await shop.webhook(fake_stripe.complete(made["checkout_url"].rsplit("/", 1)[1]))
        assert response.status_code == 200 and response.json()["outcome"] == "applied"
        assert [s for s in trips.unit() if s.startswith(HOT)] == ["WITH wanted (variant,"], trips.unit()

        async def products() -> dict[str, tuple[int, int, int | None]]:
            async with db.session() as session:
                rows = await session.execute(
                    select(Product.id, Product.stock, Product.price_minor, Product.price_max_minor).where(
                        col(Product.id).in_([TINTED, SERUM])
                    )
                )
                return {row.id: (row.stock, row.price_minor, row.price_max_minor) for row in rows}

        paid = await products()
        assert paid[TINTED][1:] == (1900, 4200)  # as on SQLite (tests/store/test_variants.py)
        assert paid[SERUM][0] == serum - 1

        def refresh(connection: Connection) -> None:
            refresh_products(connection, [TINTED, SERUM])
            connection.commit()

        await db.write(refresh)
        assert await products() == paid  # the one statement's figures are `refresh_products`'s
        left = {v.title: v.stock for v in await get_variants(db, TINTED)}
        assert left["Medium / 15 ml"] == left["Deep / 15 ml"] == 0
        assert paid[TINTED][0] == sum(left.values())


@pytest.mark.parametrize("backend", BACKENDS)
async def test_one_payment_delivered_to_two_processes_at_once_is_applied_once(
    backend: str,
    stripe_settings: Settings,
    fake_stripe: FakeStripe,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    # Another Shine process on the same database (its own engine and pool) beside the first.
    async with (
        shop_on(backend, stripe_settings, tmp_path, request) as one,
        in_own_task(open_shop(one.settings)) as two,
    ):
        stock = await one.stock(SERUM)
        made = await one.buy(SERUM, 1, user=f"usr_{uuid.uuid4().hex[:12]}")
        order_id = made["order"]["order_id"]
        completed = fake_stripe.complete(made["checkout_url"].rsplit("/", 1)[1])
        responses = await asyncio.gather(
            one.webhook(completed), two.webhook(completed), one.webhook(completed), two.webhook(completed)
        )
        assert [r.status_code for r in responses] == [200] * 4
        outcomes = sorted(r.json()["outcome"] for r in responses)
        assert outcomes == ["applied", "duplicate", "duplicate", "duplicate"]
        assert {r.json()["order_id"] for r in responses} == {order_id}
        assert (await one.order(order_id)).status == "paid"
        assert await one.count(ProcessedEvent, col(ProcessedEvent.order_id) == order_id) == 1
        assert await one.count(FulfilmentJob, col(FulfilmentJob.order_id) == order_id) == 1
        assert await one.stock(SERUM) == stock - 1
