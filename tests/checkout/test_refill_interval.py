"""Changing how often a refill comes. Stripe resets a subscription's billing cycle when an item's price gets
another billing period (interval or interval count): the new period starts at the change and is invoiced at
once. The Stripe fake and the simulated billing do the same, and Shine books an interval change for the end of
the period already paid (a subscription schedule), so nothing is charged now, the next refill comes on the date
already planned, and the new interval runs from it. Both with the real stripe SDK against the Stripe fake and in
simulated mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from shine_mcp.integrations.billing import SimulatedBilling, interval_params
from shine_mcp.integrations.payments import SimulatedGateway
from shine_mcp.orders.service import Commerce
from shine_mcp.store.orders import Order
from tests.checkout.conftest import SERUM, Shop
from tests.fakes.stripe_api import FakeStripe

ANA = "usr_ana_interval"
WEEK = 7 * 24 * 3600


def session_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def simulated_billing(shop: Shop) -> SimulatedBilling:
    billing = Commerce(shop.services).billing()
    assert isinstance(billing, SimulatedBilling)
    return billing


async def orders_of(shop: Shop, sub_id: str) -> list[Order]:
    async with shop.services.db.session() as session:
        found = await session.execute(select(Order).where(col(Order.cart_id) == sub_id))
        return list(found.scalars().all())


async def simulated_refill(shop: Shop, weeks: int) -> tuple[str, str]:
    """A paid refill every `weeks` weeks: (Shine's id, the simulated provider's id)."""
    started = await shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": weeks, "confirm": True}, user=ANA
    )
    gateway = Commerce(shop.services).gateway()
    assert isinstance(gateway, SimulatedGateway)
    assert (await gateway.pay(session_of(started["checkout_url"]))).paid
    [listed] = (await shop.call("list_subscriptions", user=ANA))["subscriptions"]
    sub_id = str(started["subscription"]["subscription_id"])
    data = [
        d for d in await simulated_billing(shop).store.all() if d["metadata"].get("subscription_id") == sub_id
    ]
    assert listed["status"] == "active"
    return sub_id, str(data[0]["id"])


async def stripe_refill(shop: Shop, fake: FakeStripe, weeks: int) -> tuple[str, str]:
    started = await shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": weeks, "confirm": True}, user=ANA
    )
    session_id = session_of(started["checkout_url"])
    for event in fake.complete_subscription(session_id):
        assert (await shop.webhook(event)).status_code == 200
    return str(started["subscription"]["subscription_id"]), str(fake.sessions[session_id]["subscription"])


def period(item: dict[str, Any]) -> tuple[int, int]:
    return int(item["current_period_start"]), int(item["current_period_end"])


def stamp(moment: datetime | str) -> int:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return int(moment.astimezone(UTC).timestamp())


# --- the providers: a new interval resets the billing cycle, as Stripe documents -------------------------------
async def test_stripe_fake_starts_a_new_period_and_bills_it_at_once_when_the_interval_changes(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    _, provider = await stripe_refill(stripe_shop, fake_stripe, weeks=4)
    billing = Commerce(stripe_shop.services).billing()
    current = await billing.retrieve_subscription(provider)
    seen = len(fake_stripe.events)

    updated = await billing.update_subscription(
        provider, interval_params(current, 6), idempotency_key="test-every-6w"
    )
    start, end = period(updated["items"]["data"][0])
    assert start >= fake_stripe.now() - 5 and end - start == 6 * WEEK  # the cycle starts again now
    [paid] = [e for e in fake_stripe.events[seen:] if e["type"] == "invoice.paid"]
    invoice = paid["data"]["object"]
    assert invoice["billing_reason"] == "subscription_update"
    assert invoice["amount_paid"] == current["items"]["data"][0]["price"]["unit_amount"]  # no credit: "none"


async def test_simulated_billing_starts_a_new_period_and_bills_it_at_once_when_the_interval_changes(
    shop: Shop,
) -> None:
    sub_id, provider = await simulated_refill(shop, weeks=4)
    billing = simulated_billing(shop)
    await billing.advance(timedelta(days=10))
    current = await billing.retrieve_subscription(provider)
    before = len(await orders_of(shop, sub_id))

    updated = await billing.update_subscription(
        provider, interval_params(current, 6), idempotency_key="test-every-6w"
    )
    start, end = period(updated["items"]["data"][0])
    assert start == stamp(billing.clock()) and end - start == 6 * WEEK
    assert await billing.advance(timedelta(days=41)) == 0  # the next charge is six weeks from the change
    assert await billing.advance(timedelta(days=1)) == 1
    assert len(await orders_of(shop, sub_id)) == before + 1


# --- Shine: the next refill keeps its date, the new interval runs from it -------------------------------------------
async def test_simulated_a_new_interval_starts_after_the_refill_already_planned_and_charges_nothing_now(
    shop: Shop,
) -> None:
    sub_id, provider = await simulated_refill(shop, weeks=4)
    billing = simulated_billing(shop)
    [before] = (await shop.call("list_subscriptions", user=ANA))["subscriptions"]
    await billing.advance(timedelta(days=10))

    changed = await shop.call(
        "update_subscription", {"subscription_id": sub_id, "interval_weeks": 6}, user=ANA
    )
    assert changed["interval_weeks"] == 6
    assert changed["next_delivery"] == before["next_delivery"]  # still four weeks after the first
    planned = datetime.fromisoformat(before["next_delivery"])
    assert f"{planned:%-d %B %Y}" in changed["notice"] and "every 6 weeks" in changed["notice"]
    assert len(await orders_of(shop, sub_id)) == 1  # nothing charged or sent now

    assert await billing.advance(timedelta(days=18, hours=1)) == 1  # day 28: the refill already planned
    [after] = (await shop.call("list_subscriptions", user=ANA))["subscriptions"]
    assert stamp(after["next_delivery"]) == stamp(planned) + 6 * WEEK
    assert await billing.advance(timedelta(days=41)) == 0
    assert await billing.advance(timedelta(days=1)) == 1  # six weeks after it
    assert len(await orders_of(shop, sub_id)) == 3
    assert provider


async def test_stripe_a_new_interval_starts_after_the_refill_already_planned_and_charges_nothing_now(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    sub_id, provider = await stripe_refill(stripe_shop, fake_stripe, weeks=4)
    first_end = fake_stripe.subscriptions[provider]["items"]["data"][0]["current_period_end"]
    seen = len(fake_stripe.events)

    changed = await stripe_shop.call(
        "update_subscription", {"subscription_id": sub_id, "interval_weeks": 6, "quantity": 2}, user=ANA
    )
    assert changed["interval_weeks"] == 6 and changed["items"][0]["quantity"] == 2
    assert stamp(changed["next_delivery"]) == first_end
    assert not [e for e in fake_stripe.events[seen:] if e["type"].startswith("invoice.")]  # nothing charged
    for event in fake_stripe.events[seen:]:
        assert (await stripe_shop.webhook(event)).status_code == 200

    renewal = fake_stripe.renew(provider)  # the refill already planned, at the new quantity
    assert (
        renewal["data"]["object"]["amount_paid"]
        == 2 * fake_stripe.subscriptions[provider]["items"]["data"][0]["price"]["unit_amount"]
    )
    start, end = period(fake_stripe.subscriptions[provider]["items"]["data"][0])
    assert start == first_end and end - start == 6 * WEEK
    for event in fake_stripe.events[seen:]:
        assert (await stripe_shop.webhook(event)).status_code == 200
    [listed] = (await stripe_shop.call("list_subscriptions", user=ANA))["subscriptions"]
    assert stamp(listed["next_delivery"]) == first_end + 6 * WEEK
    assert len(await orders_of(stripe_shop, sub_id)) == 2

    cancelled = await stripe_shop.call(
        "cancel_subscription", {"subscription_id": sub_id, "confirm": True}, user=ANA
    )
    assert cancelled["cancels_at_period_end"] is True


async def test_simulated_a_quantity_changed_after_a_new_interval_was_booked_keeps_both(shop: Shop) -> None:
    sub_id, provider = await simulated_refill(shop, weeks=4)
    billing = simulated_billing(shop)
    await shop.call("update_subscription", {"subscription_id": sub_id, "interval_weeks": 6}, user=ANA)
    changed = await shop.call("update_subscription", {"subscription_id": sub_id, "quantity": 2}, user=ANA)
    assert changed["interval_weeks"] == 6 and changed["items"][0]["quantity"] == 2

    assert await billing.advance(timedelta(days=28, hours=1)) == 1  # the refill already planned: two serums
    [item] = (await billing.retrieve_subscription(provider))["items"]["data"]
    assert item["quantity"] == 2 and item["price"]["recurring"] == {"interval": "week", "interval_count": 6}
    assert await billing.advance(timedelta(days=41)) == 0
    assert await billing.advance(timedelta(days=1)) == 1  # six weeks later, still two
    totals = sorted(o.total_minor for o in await orders_of(shop, sub_id))
    assert totals[1:] == [2 * totals[0], 2 * totals[0]]
