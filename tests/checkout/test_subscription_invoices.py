"""Paid refill invoices: each is one write to the database, and a refill paid before its checkout told the
shipping address waits for it (held, `awaiting_address`) instead of going to fulfilment without one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from shine_mcp.store.orders import FulfilmentJob, Order
from tests.checkout.conftest import SERUM, Shop
from tests.fakes.stripe_api import FakeStripe

ANA = "usr_ana_refills"


@contextmanager
def counting_commits(shop: Shop) -> Iterator[list[str]]:
    """Every transaction committed on the shop's database meanwhile (the async engine's and, on SQLite, the
    writer thread's)."""
    engines: list[Engine] = [shop.services.db.engine.sync_engine]
    if shop.services.db.threads is not None:
        engines.append(shop.services.db.threads.engine)
    commits: list[str] = []

    def count(_connection: Any) -> None:
        commits.append("commit")

    for engine in engines:
        event.listen(engine, "commit", count)
    try:
        yield commits
    finally:
        for engine in engines:
            event.remove(engine, "commit", count)


async def jobs_of(shop: Shop, order_id: str) -> list[FulfilmentJob]:
    async with shop.services.db.session() as session:
        found = await session.execute(select(FulfilmentJob).where(col(FulfilmentJob.order_id) == order_id))
        return list(found.scalars().all())


async def refill_orders(shop: Shop, sub_id: str) -> list[Order]:
    async with shop.services.db.session() as session:
        found = await session.execute(select(Order).where(col(Order.cart_id) == sub_id))
        return list(found.scalars().all())


async def subscribed(shop: Shop, fake: FakeStripe) -> tuple[str, list[dict[str, Any]]]:
    """Ana says yes to a serum refill and pays on Stripe; the events Stripe sends, not delivered yet:
    checkout.session.completed, customer.subscription.created, invoice.paid."""
    started = await shop.call("subscribe", {"product_id": SERUM, "confirm": True}, user=ANA)
    session_id = started["checkout_url"].rsplit("/", 1)[1]
    return started["subscription"]["subscription_id"], fake.complete_subscription(session_id)


async def test_a_paid_renewal_is_one_write_and_its_replay_writes_nothing(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    sub_id, events = await subscribed(stripe_shop, fake_stripe)
    for sent in events:
        assert (await stripe_shop.webhook(sent)).status_code == 200
    provider = fake_stripe.sessions[events[0]["data"]["object"]["id"]]["subscription"]
    renewal = fake_stripe.renew(provider)

    with counting_commits(stripe_shop) as commits:
        answer = await stripe_shop.webhook(renewal)
    assert answer.status_code == 200 and answer.json()["outcome"] == "applied"
    assert len(commits) == 1  # event recorded, subscription paid up, order paid, stock taken, outbox row
    orders = await refill_orders(stripe_shop, sub_id)
    assert len(orders) == 2 and all(o.status == "paid" for o in orders)
    assert [len(await jobs_of(stripe_shop, o.id)) for o in orders] == [1, 1]

    with counting_commits(stripe_shop) as commits:
        again = await stripe_shop.webhook(renewal)
    assert again.json()["outcome"] == "duplicate" and commits == []
    assert len(await refill_orders(stripe_shop, sub_id)) == 2
    assert [len(await jobs_of(stripe_shop, o.id)) for o in orders] == [1, 1]


async def test_a_refill_paid_before_its_checkout_completes_waits_for_the_address(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    sub_id, (completed, created, paid) = await subscribed(stripe_shop, fake_stripe)

    for sent in (paid, created):  # Stripe's invoice.paid outruns checkout.session.completed
        assert (await stripe_shop.webhook(sent)).status_code == 200
    [order] = await refill_orders(stripe_shop, sub_id)
    assert order.status == "paid" and order.hold_reason == "awaiting_address" and order.shipping is None
    assert await jobs_of(stripe_shop, order.id) == []  # nothing goes to fulfilment without an address
    shown = await stripe_shop.call("get_order", {"order_id": order.id}, user=ANA)
    assert shown["hold_reason"] == "awaiting_address" and "address" in shown["next_steps"]

    for _ in range(2):  # the address arrives (twice, as a redelivery): released once
        assert (await stripe_shop.webhook(completed)).status_code == 200
    released = await stripe_shop.order(order.id)
    assert released.hold_reason is None and released.shipping == FakeStripe.address()
    [job] = await jobs_of(stripe_shop, order.id)
    assert job.payload["ship_to"] == FakeStripe.address()


async def test_a_refill_paid_after_its_checkout_completed_goes_straight_to_fulfilment_with_the_address(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    sub_id, events = await subscribed(stripe_shop, fake_stripe)
    for sent in events:  # completed, created, invoice.paid: the usual order
        assert (await stripe_shop.webhook(sent)).status_code == 200
    [order] = await refill_orders(stripe_shop, sub_id)
    assert order.hold_reason is None
    [job] = await jobs_of(stripe_shop, order.id)
    assert job.payload["ship_to"] == FakeStripe.address()


async def test_a_refill_waiting_for_its_address_that_sold_out_stays_with_the_merchant(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    sub_id, (completed, created, paid) = await subscribed(stripe_shop, fake_stripe)
    await stripe_shop.set_product(SERUM, stock=0)  # the last serum went to someone else meanwhile
    assert (await stripe_shop.webhook(paid)).status_code == 200
    assert (await stripe_shop.webhook(completed)).status_code == 200
    [order] = await refill_orders(stripe_shop, sub_id)
    held = await stripe_shop.order(order.id)
    assert held.hold_reason == "oversold"  # the address alone does not send it: there is nothing to send
    assert await jobs_of(stripe_shop, order.id) == []


@contextmanager
def statements(shop: Shop) -> Iterator[list[str]]:
    """Every SQL statement sent to the shop's database meanwhile (both engines, as `counting_commits`)."""
    engines: list[Engine] = [shop.services.db.engine.sync_engine]
    if shop.services.db.threads is not None:
        engines.append(shop.services.db.threads.engine)
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


async def test_refill_events_are_told_from_membership_events_without_a_database_read(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    """Premium memberships share the subscription events: which one an event is about comes from the event
    itself, so a refill's renewal costs no extra round trip to look for a membership."""
    sub_id, events = await subscribed(stripe_shop, fake_stripe)
    with statements(stripe_shop) as sent:
        for delivered in events:  # completed, created, the first invoice.paid
            assert (await stripe_shop.webhook(delivered)).status_code == 200
        provider = fake_stripe.sessions[events[0]["data"]["object"]["id"]]["subscription"]
        renewed = fake_stripe.renew(provider)
        before_renewal = len(sent)
        assert (await stripe_shop.webhook(renewed)).json()["outcome"] == "applied"
    assert not [s for s in sent if "memberships" in s]
    renewal = sent[before_renewal:]
    # nothing read before the renewal's one write transaction, and no second transaction after it
    assert renewal[0].startswith("BEGIN") and not [s for s in renewal[1:] if s.startswith("BEGIN")], renewal
    assert len(await refill_orders(stripe_shop, sub_id)) == 2
