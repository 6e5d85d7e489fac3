"""A payment's transaction updates the product's stock rows last: concurrent payments for one product queue
for those rows, and a row lock lasts until COMMIT, across every statement after it (on PostgreSQL each a
trip through a busy event loop). With the stock taken first, two workers handled fewer webhooks a second
than one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from tests.checkout.conftest import SERUM, Shop
from tests.fakes.stripe_api import FakeStripe

HOT = ("UPDATE product_variants", "UPDATE products")


async def test_a_payment_updates_the_products_stock_rows_last(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    await stripe_shop.set_product(SERUM, stock=5)
    made = await stripe_shop.buy(SERUM, 1, user="usr_ana")
    session = made["checkout_url"].rsplit("/", 1)[1]
    statements: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(" ".join(statement.split()[:3]))

    def committed(_conn: Any) -> None:
        statements.append("COMMIT")

    db = stripe_shop.services.db
    engines = [db.engine.sync_engine] + ([db.threads.engine] if db.threads is not None else [])
    for engine in engines:
        event.listen(engine, "before_cursor_execute", executed)
        event.listen(engine, "commit", committed)
    try:
        response = await stripe_shop.webhook(fake_stripe.complete(session))
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", executed)
            event.remove(engine, "commit", committed)
    assert response.status_code == 200 and response.json()["outcome"] == "applied"

    # The payment's unit of work: from recording the event to its commit.
    start = statements.index("INSERT INTO processed_events")
    unit = statements[start : statements.index("COMMIT", start)]
    assert any(s.startswith(HOT) for s in unit), unit
    first_hot = next(i for i, s in enumerate(unit) if s.startswith(HOT))
    assert all(s.startswith(HOT) for s in unit[first_hot:]), unit  # nothing else while they are locked
    assert await stripe_shop.stock(SERUM) == 4
