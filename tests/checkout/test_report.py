"""The admin sales report: orders, revenue and refunds per UTC day and currency."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from tests.checkout.conftest import CLEANSER, SERUM, Shop, in_own_task, open_shop
from tests.checkout.test_refunds import paid
from tests.fakes.stripe_api import FakeStripe


async def stripe_paid(shop: Shop, fake: FakeStripe, product: str, quantity: int) -> str:
    result = await shop.buy(product, quantity)
    await shop.webhook(fake.complete(result["checkout_url"].rsplit("/", 1)[1]))
    return str(result["order"]["order_id"])


def day(report: dict[str, Any], when: str) -> dict[str, Any]:
    return next(row for row in report["days"] if row["day"] == when)


async def test_revenue_counts_on_the_day_paid_and_refunds_on_their_own_day(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    today = utcnow().date()
    yesterday = today - timedelta(days=1)
    old = await stripe_paid(stripe_shop, fake_stripe, SERUM, 2)  # $44.00
    await stripe_shop.age_order(old, days=1)
    await stripe_paid(stripe_shop, fake_stripe, CLEANSER, 1)  # $17.99
    await stripe_shop.call("refund_order", {"order_id": old, "amount": 4})

    report = await stripe_shop.call(
        "sales_report", {"start": yesterday.isoformat(), "end": today.isoformat()}
    )
    assert day(report, yesterday.isoformat())["orders"] == 1
    assert day(report, yesterday.isoformat())["revenue"]["amount_minor"] == 4400
    assert day(report, yesterday.isoformat())["refunds"]["amount_minor"] == 0
    assert day(report, today.isoformat())["revenue"]["amount_minor"] == 1799
    assert day(report, today.isoformat())["refunds"]["amount_minor"] == 400
    [total] = report["totals"]
    assert (total["currency"], total["orders"]) == ("USD", 2)
    assert total["net"] == {"amount_minor": 4400 + 1799 - 400, "currency": "USD", "display": "$57.99"}
    assert report["simulated_included"] is False

    only_yesterday = await stripe_shop.call(
        "sales_report", {"start": yesterday.isoformat(), "end": yesterday.isoformat()}
    )
    assert only_yesterday["totals"][0]["orders"] == 1


async def test_simulated_orders_stay_out_once_stripe_is_configured(
    sim_settings: Settings, stripe_settings: Settings, fake_stripe: FakeStripe
) -> None:
    today = utcnow().date().isoformat()
    async with in_own_task(open_shop(sim_settings)) as simulated:
        await paid(simulated, 1)
        report = await simulated.call("sales_report", {"start": today, "end": today})
        assert report["simulated_included"] is True and report["totals"][0]["orders"] == 1
    async with in_own_task(open_shop(stripe_settings)) as live:
        await stripe_paid(live, fake_stripe, CLEANSER, 1)
        report = await live.call("sales_report", {"start": today, "end": today})
        assert report["totals"][0]["orders"] == 1 and report["totals"][0]["revenue"]["amount_minor"] == 1799
        both = await live.call("sales_report", {"start": today, "end": today, "include_simulated": True})
        assert both["totals"][0]["orders"] == 2


async def test_the_report_is_for_admins_and_checks_its_dates(shop: Shop) -> None:
    today = utcnow().date()
    args = {"start": today.isoformat(), "end": today.isoformat()}
    assert "admins" in await shop.refused("sales_report", args, user="usr_ana")
    backwards = {"start": today.isoformat(), "end": (today - timedelta(days=1)).isoformat()}
    assert "before start" in await shop.refused("sales_report", backwards)
    too_long = {"start": (today - timedelta(days=400)).isoformat(), "end": today.isoformat()}
    assert "366 days" in await shop.refused("sales_report", too_long)
    empty = await shop.call("sales_report", args)
    assert empty["days"] == [] and empty["totals"] == []
