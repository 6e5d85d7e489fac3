"""The merchant's view of refill subscriptions in `sales_report`: active ones, monthly recurring revenue,
churn and the refills of the next 14 days, on the simulated clock. Expected figures come from the orders the
refills became and from calendar arithmetic, not from the report's own code."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

from sqlmodel import col, select
from typer.testing import CliRunner

from shine_cli.cli import app
from shine_mcp.config import Settings
from shine_mcp.integrations.billing import SimulatedBilling
from shine_mcp.integrations.payments import SimulatedGateway
from shine_mcp.money import format_money
from shine_mcp.orders.service import Commerce
from shine_mcp.store.orders import Order
from tests.checkout.conftest import SERUM, Shop, in_own_task, open_shop

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


# --- premium members --------------------------------------------------------------------------------------------
DAN = "usr_dan_report"
MONTHLY, YEARLY = 799, 7900  # the shop's premium prices (the test settings' defaults)


async def member(shop: Shop, user: str, plan: str) -> None:
    """A premium member who paid the first period of `plan` on the simulated payment page."""
    joined = await shop.call("join_premium", {"plan": plan, "confirm": True}, user=user)
    gateway = Commerce(shop.services).gateway()
    assert isinstance(gateway, SimulatedGateway)
    assert (await gateway.pay(joined["checkout_url"].rsplit("/", 1)[1])).paid
    assert (await shop.call("premium_membership", user=user))["premium"] is True


async def members_in_a_period(shop: Shop) -> tuple[str, str]:
    """Ana (monthly), Ben (yearly) and Cleo (monthly) are members before the period; on its first day Cleo
    cancels and Dan joins yearly; the period ends on day 40, after Cleo's paid month ran out."""
    billing = billing_of(shop)
    await member(shop, ANA, "monthly")
    await member(shop, BEN, "yearly")
    await member(shop, CLEO, "monthly")
    await billing.advance(timedelta(days=1))
    first_day = billing.clock().date()
    await shop.call("cancel_premium", {"confirm": True}, user=CLEO)
    await member(shop, DAN, "yearly")
    await billing.advance(timedelta(days=39))
    assert (await shop.call("premium_membership", user=CLEO))["premium"] is False
    return first_day.isoformat(), billing.clock().date().isoformat()


async def test_the_report_shows_premium_members_who_joined_and_left_their_monthly_revenue_and_churn(
    shop: Shop,
) -> None:
    first_day, last_day = await members_in_a_period(shop)
    report = await shop.call("sales_report", {"start": first_day, "end": last_day, "include_simulated": True})
    [row] = report["premium_members"]
    assert row["currency"] == "USD"
    assert row["active_at_start"] == 3 and row["joined"] == 1 and row["ended"] == 1
    assert row["active"] == 3  # Ana, Ben and Dan
    assert row["churn"] == 1 / 3
    # a yearly plan brings a twelfth of its price a month
    assert abs(row["monthly_recurring_revenue"]["amount_minor"] - (MONTHLY + 2 * YEARLY / 12)) <= 0.5
    assert report["subscriptions"] == []  # no refills: members are not refill subscriptions

    before = await shop.call("sales_report", {"start": last_day, "end": last_day, "include_simulated": True})
    [later] = before["premium_members"]
    assert (later["active_at_start"], later["joined"], later["ended"], later["churn"]) == (3, 0, 0, 0)


async def test_real_money_reports_leave_simulated_members_out(shop: Shop) -> None:
    await member(shop, ANA, "monthly")
    today = billing_of(shop).clock().date().isoformat()
    report = await shop.call("sales_report", {"start": today, "end": today, "include_simulated": False})
    assert report["premium_members"] == []


def test_the_cli_report_shows_refills_and_premium_members_side_by_side(sim_settings: Settings) -> None:
    async def arrange() -> tuple[str, str]:
        async with in_own_task(open_shop(sim_settings)) as shop:
            await subscribed(shop, ANA, weeks=4)
            return await members_in_a_period(shop)

    first_day, last_day = asyncio.run(arrange())
    env = {
        "SHINE_DATA_DIR": str(sim_settings.data_dir),
        "DATABASE_URL": None,
        "STRIPE_SECRET_KEY": None,
        "SHINE_SECRET_KEY": None,
        "COLUMNS": "200",
    }
    args = ["subscriptions", "report", "--start", first_day, "--end", last_day, "--include-simulated"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    text = " ".join(re.sub(r"[\u2500-\u257f]", " ", result.output).split())  # without the table lines
    mrr = format_money(round(MONTHLY + 2 * YEARLY / 12), "USD")
    assert "Premium members" in text and mrr in text
    assert "USD 3 1 1 33.3 %" in text  # active, joined, ended, churn
    assert "Refill subscriptions" in text


async def test_a_member_who_switched_to_monthly_counts_the_monthly_price_once_the_switch_took_effect(
    shop: Shop,
) -> None:
    billing = billing_of(shop)
    await member(shop, ANA, "yearly")
    await shop.call("change_premium_plan", {"plan": "monthly", "confirm": True}, user=ANA)
    today = billing.clock().date().isoformat()
    [row] = (await shop.call("sales_report", {"start": today, "end": today, "include_simulated": True}))[
        "premium_members"
    ]
    assert abs(row["monthly_recurring_revenue"]["amount_minor"] - YEARLY / 12) <= 0.5  # the year runs on

    await billing.advance(timedelta(days=367))  # the paid year is over: monthly from then on
    assert (await shop.call("premium_membership", user=ANA))["plan"] == "monthly"
    today = billing.clock().date().isoformat()
    [row] = (await shop.call("sales_report", {"start": today, "end": today, "include_simulated": True}))[
        "premium_members"
    ]
    assert row["monthly_recurring_revenue"]["amount_minor"] == MONTHLY
