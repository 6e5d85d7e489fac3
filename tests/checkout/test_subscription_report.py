"""The merchant's view of refill subscriptions in `sales_report`: active ones, monthly recurring revenue,
churn and the refills of the next 14 days, on the simulated clock. Expected figures come from the orders the
refills became and from calendar arithmetic, not from the report's own code."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from shine_mcp.integrations.billing import SimulatedBilling
from shine_mcp.integrations.payments import SimulatedGateway
from shine_mcp.orders.service import Commerce
from shine_mcp.store.orders import Order
from tests.checkout.conftest import SERUM, Shop

ANA, BEN, CLEO = "usr_ana_report", "usr_ben_report", "usr_cleo_report"


def billing_of(shop: Shop) -> SimulatedBilling:
    billing = Commerce(shop.services).billing()
    assert isinstance(billing, SimulatedBilling)
    return billing


async def subscribed(shop: Shop, user: str, weeks: int, quantity: int = 1) -> tuple[str, int]:
    """A paid subscription: its id and what one delivery charged (the total of the order it became)."""
    started = await shop.call(
        "subscribe",
        {"product_id": SERUM, "interval_weeks": weeks, "quantity": quantity, "confirm": True},
        user=user,
    )
    gateway = Commerce(shop.services).gateway()
    assert isinstance(gateway, SimulatedGateway)
    assert (await gateway.pay(started["checkout_url"].rsplit("/", 1)[1])).paid
    sub_id = str(started["subscription"]["subscription_id"])
    async with shop.services.db.session() as session:
        [order] = (await session.execute(select(Order).where(col(Order.cart_id) == sub_id))).scalars().all()
    return sub_id, order.total_minor


def usd(report: dict[str, Any]) -> dict[str, Any]:
    [row] = [row for row in report["subscriptions"] if row["currency"] == "USD"]
    return row


async def test_the_report_shows_active_refills_their_monthly_revenue_churn_and_what_is_due_soon(
    shop: Shop,
) -> None:
    billing = billing_of(shop)
    ana, ana_amount = await subscribed(shop, ANA, weeks=4)
    ben, _ = await subscribed(shop, BEN, weeks=7)
    cleo, cleo_amount = await subscribed(shop, CLEO, weeks=6, quantity=2)
    assert cleo_amount == 2 * ana_amount  # same serum, same discount: the quantity counts

    await billing.advance(timedelta(days=1))
    first_day = billing.clock().date()  # all three were paid for before it began
    await shop.call("cancel_subscription", {"subscription_id": ben, "confirm": True}, user=BEN)
    await billing.advance(timedelta(days=74))  # day 75: Ben's ended at day 49, Ana's next refill is day 84
    last_day = billing.clock().date()

    report = await shop.call(
        "sales_report",
        {"start": first_day.isoformat(), "end": last_day.isoformat(), "include_simulated": True},
    )
    row = usd(report)
    assert row["active_at_start"] == 3 and row["ended"] == 1
    assert row["churn"] == 1 / 3
    assert row["active"] == 2
    # Ana: every 4 weeks is 13 deliveries a year; Cleo: every 6 weeks is 52/6 a year; a month is a twelfth.
    expected_mrr = ana_amount * 13 / 12 + cleo_amount * 52 / 6 / 12
    assert abs(row["monthly_recurring_revenue"]["amount_minor"] - expected_mrr) <= 0.5
    # Next 14 days (days 75-89): Ana's day-84 refill; Cleo's come on days 84 too (6 weeks x 2)
    assert row["upcoming_refills"] == 2
    assert row["upcoming_value"]["amount_minor"] == ana_amount + cleo_amount
    assert row["upcoming_value"]["display"].startswith("$")
    assert ana and cleo


async def test_a_paused_refill_brings_no_monthly_revenue_and_nothing_comes_due(shop: Shop) -> None:
    billing = billing_of(shop)
    ana, ana_amount = await subscribed(shop, ANA, weeks=4)
    await subscribed(shop, BEN, weeks=4)
    await shop.call("pause_subscription", {"subscription_id": ana, "confirm": True}, user=ANA)
    await billing.advance(timedelta(days=20))  # the running one's next refill is day 28
    today = billing.clock().date().isoformat()

    row = usd(await shop.call("sales_report", {"start": today, "end": today, "include_simulated": True}))
    assert row["active"] == 1
    assert abs(row["monthly_recurring_revenue"]["amount_minor"] - ana_amount * 13 / 12) <= 0.5
    assert row["upcoming_refills"] == 1 and row["upcoming_value"]["amount_minor"] == ana_amount
    assert row["active_at_start"] == 2 and row["ended"] == 0 and row["churn"] == 0


async def test_without_subscriptions_the_report_lists_none(shop: Shop) -> None:
    today = billing_of(shop).clock().date().isoformat()
    report = await shop.call("sales_report", {"start": today, "end": today, "include_simulated": True})
    assert report["subscriptions"] == []
