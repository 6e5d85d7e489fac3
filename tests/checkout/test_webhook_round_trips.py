"""A payment event costs the database as few round trips as it can, on both dialects. On SQLite the order is
read beside the one writer thread, which then records the event and applies the payment in one transaction.
On PostgreSQL the order is read with its lines by one statement and the whole payment is written by
another, in autocommit: two round trips and no BEGIN or COMMIT, and the stock rows every payment for a product must
lock are held only while PostgreSQL runs that statement.

Each round trip of a PostgreSQL transaction is a trip through the worker's event loop, and a row lock lasts
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
HOT = ("UPDATE product_variants", "UPDATE products", "WITH wanted", "WITH locked")
PAYMENT_STARTS = ["INSERT INTO processed_events", "UPDATE orders SET"]
# PostgreSQL: the order read with its lines, then everything written at once.
AT_ONCE = ["SELECT found.id, found.user_id,", "WITH locked AS"]


@dataclass
class Trips:
    """What reached the database while a block ran: pool checkouts, transactions begun, statements run
    (first three words each) and commits, in order; on PostgreSQL also what asyncpg's query log shows, which
    SQLAlchemy's events do not: BEGIN and COMMIT, and the statements run on the driver directly."""

    checkouts: int = 0
    begins: int = 0
    statements: list[str] = field(default_factory=list)
    driver: list[str] = field(default_factory=list)

    def sent(self) -> list[str]:
        """asyncpg's log, the first three words of each query."""
        return [" ".join(query.split()[:3]).rstrip(";") for query in self.driver]

    def transaction_trips(self) -> list[str]:
        words = [query.split()[0].upper() for query in self.sent()]
        return [word for word in words if word in ("BEGIN", "COMMIT", "ROLLBACK")]

    def unit(self, first: str = "SELECT orders") -> list[str]:
        """The statements of the transaction that recorded the event, from `first` up to its COMMIT."""
        start = next(i for i, s in enumerate(self.statements) if s.startswith(first))
        return self.statements[start : self.statements.index("COMMIT", start) + 1]


@contextmanager
def counted(engines: list[Engine]) -> Iterator[Trips]:
    trips = Trips()
    drivers: list[Any] = []

    def logged(record: Any) -> None:
        trips.driver.append(record.query)

    def checkout(dbapi_connection: Any, *_args: Any) -> None:
        trips.checkouts += 1
        driver = getattr(dbapi_connection, "_connection", None)  # asyncpg's, under SQLAlchemy's adapter
        if hasattr(driver, "add_query_logger"):
            driver.add_query_logger(logged)
            drivers.append(driver)

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
        for driver in drivers:
            driver.remove_query_logger(logged)


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
        await asyncio.sleep(0)  # asyncpg hands its query log over in a callback on the loop
    assert response.status_code == 200 and response.json()["outcome"] == "applied"
    return trips, made["order"]["order_id"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_payment_event_is_one_transaction_and_on_postgresql_two_round_trips(
    backend: str,
    stripe_settings: Settings,
    fake_stripe: FakeStripe,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    async with shop_on(backend, stripe_settings, tmp_path, request) as shop:
        trips, order_id = await paid_once(shop, fake_stripe)
        if backend == "postgresql":
            # One connection from the pool; the order read with its lines, then recorded, marked paid, the
            # cart moved on and emptied, the outbox row written and the stock taken by one statement,
            # atomic on its own: no BEGIN, no COMMIT (were 10 round trips: BEGIN, 8 statements, COMMIT).
            assert trips.checkouts == 1 and trips.sent() == AT_ONCE, trips
            assert trips.transaction_trips() == [] and trips.statements == [], trips
        else:
            assert trips.statements.count("COMMIT") == 1, trips
            # Recorded, marked paid, its lines read, the cart moved on and emptied, the outbox row
            # written, the stock taken, committed.
            # SQLite: the order is read on a reader thread beside the one writer thread, which then only
            # writes (a unit there runs alone: reading there too measured slower).
            unit = trips.unit(PAYMENT_STARTS[0])
            assert unit[:2] == PAYMENT_STARTS and len(unit) == 9, unit
        assert (await shop.order(order_id)).status == "paid"
        assert await shop.count(ProcessedEvent, col(ProcessedEvent.order_id) == order_id) == 1
        assert await shop.count(FulfilmentJob, col(FulfilmentJob.order_id) == order_id) == 1


@pytest.mark.postgres
async def test_on_postgresql_the_stock_rows_are_locked_only_while_the_last_statement_runs(
    stripe_settings: Settings,
    fake_stripe: FakeStripe,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    postgres_url: str,
) -> None:
    async with shop_on("postgresql", stripe_settings, tmp_path, request) as shop:
        stock = await shop.stock(SERUM)
        trips, order_id = await paid_once(shop, fake_stripe)
        sent = trips.sent()
        hot = [i for i, s in enumerate(sent) if s.startswith(HOT)]
        # The variant's and the product's stock in the one statement that commits on its own: their locks
        # are held for no round trip at all (were: until the COMMIT, the round trip after).
        assert hot == [len(sent) - 1] and trips.transaction_trips() == [], trips
        assert await shop.stock(SERUM) == stock - 1
        order = await shop.order(order_id)
        assert (order.status, order.hold_reason, order.lock_version) == ("paid", None, 1)
        # What the event tells is written too, the address (a JSON column) included.
        assert order.email == "ana@example.com" and order.shipping == fake_stripe.address()
        assert order.payment_intent_id is not None and order.paid_at is not None
        async with shop.services.db.session() as session:
            jobs = (
                await session.execute(select(FulfilmentJob).where(col(FulfilmentJob.order_id) == order_id))
            ).all()
        assert len(jobs) == 1
        job = jobs[0][0]
        assert (job.status, job.attempts, job.payload["order_id"]) == ("pending", 0, order_id)
        assert [item["product_id"] for item in job.payload["items"]] == [SERUM]
        assert job.payload["ship_to"] == order.shipping and job.payload["idempotency_key"] == job.id


@pytest.mark.postgres
async def test_on_postgresql_a_payment_delivered_again_later_is_a_duplicate(
    stripe_settings: Settings,
    fake_stripe: FakeStripe,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    postgres_url: str,
) -> None:
    async with shop_on("postgresql", stripe_settings, tmp_path, request) as shop:
        stock = await shop.stock(SERUM)
        made = await shop.buy(SERUM, 1, user=f"usr_{uuid.uuid4().hex[:12]}")
        order_id = made["order"]["order_id"]
        completed = fake_stripe.complete(made["checkout_url"].rsplit("/", 1)[1])
        assert (await shop.webhook(completed)).json()["outcome"] == "applied"
        again = await shop.webhook(completed)
        assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
        assert await shop.stock(SERUM) == stock - 1
        assert (await shop.order(order_id)).lock_version == 1
        assert await shop.count(FulfilmentJob, col(FulfilmentJob.order_id) == order_id) == 1
        assert await shop.count(ProcessedEvent, col(ProcessedEvent.order_id) == order_id) == 1


@pytest.mark.postgres
async def test_on_postgresql_a_payment_for_units_another_took_is_held_in_a_transaction(
    stripe_settings: Settings,
    fake_stripe: FakeStripe,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    postgres_url: str,
) -> None:
    async with shop_on("postgresql", stripe_settings, tmp_path, request) as shop:
        await shop.set_product(SERUM, stock=1)
        made = [await shop.buy(SERUM, 1, user=f"usr_{uuid.uuid4().hex[:12]}") for _ in range(2)]
        first, second = (m["order"]["order_id"] for m in made)
        events = [fake_stripe.complete(m["checkout_url"].rsplit("/", 1)[1]) for m in made]
        assert (await shop.webhook(events[0])).json()["outcome"] == "applied"
        with counted(engines_of(shop)) as trips:
            response = await shop.webhook(events[1])
            await asyncio.sleep(0)
        assert response.json()["outcome"] == "applied"
        # The one statement found the unit gone and wrote nothing; the transaction held the order.
        assert trips.sent()[: len(AT_ONCE)] == AT_ONCE and "COMMIT" in trips.statements, trips
        assert trips.transaction_trips() == ["BEGIN", "COMMIT"], trips
        held = await shop.order(second)
        assert (held.status, held.hold_reason) == ("paid", "oversold")
        assert (await shop.order(first)).hold_reason is None
        assert await shop.count(FulfilmentJob, col(FulfilmentJob.order_id) == second) == 0
        assert await shop.count(ProcessedEvent, col(ProcessedEvent.order_id) == second) == 1
        assert await shop.stock(SERUM) == 0
        await shop.set_product(SERUM, stock=50)


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
        assert [s for s in trips.sent() if s.startswith(HOT)] == ["WITH locked AS"], trips

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
