"""Refills for a whole routine: its products in one subscription (one Stripe subscription with several
items), asked about first, each paid invoice one order with every line, sent to fulfilment once."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from shine_cli.subscriptions import advance_clock
from shine_mcp.orders.refills import suggest_interval
from shine_mcp.orders.service import Commerce
from shine_mcp.store.catalog import get_product
from shine_mcp.store.orders import FulfilmentJob, Order, OrderLine
from shine_mcp.store.subscriptions import Subscription
from tests.checkout.conftest import CLEANSER, SERUM, Shop
from tests.checkout.test_subscriptions import pay_simulated
from tests.fakes.stripe_api import FakeStripe

ANA = "usr_ana_routine"
ROUTINE = [SERUM, CLEANSER]


async def orders_with_lines(shop: Shop, sub_id: str) -> list[tuple[Order, list[OrderLine]]]:
    async with shop.services.db.session() as session:
        orders = (await session.execute(select(Order).where(col(Order.cart_id) == sub_id))).scalars().all()
        found = []
        for order in orders:
            lines = await session.execute(select(OrderLine).where(col(OrderLine.order_id) == order.id))
            found.append((order, list(lines.scalars().all())))
    return found


async def suggested_weeks(shop: Shop, product_id: str) -> int:
    product = await get_product(shop.services.db, product_id)
    assert product is not None
    return suggest_interval(product).weeks


async def test_subscribing_to_a_routine_asks_first_then_each_delivery_is_one_order_with_every_product(
    shop: Shop,
) -> None:
    said = await shop.refused("subscribe_to_routine", {"product_ids": ROUTINE}, user=ANA)
    weeks = min([await suggested_weeks(shop, p) for p in ROUTINE])
    assert "one refill subscription for the routine" in said and f"every {weeks} weeks" in said
    assert "$39.99 each delivery" in said  # $22.00 + $17.99, sent together, charged once
    assert await shop.count(Subscription) == 0  # nothing starts before the yes

    started = await shop.call("subscribe_to_routine", {"product_ids": ROUTINE, "confirm": True}, user=ANA)
    sub = started["subscription"]
    assert [i["product_id"] for i in sub["items"]] == ROUTINE and sub["interval_weeks"] == weeks
    assert sub["amount_per_delivery"]["display"] == "$39.99"
    assert "the shortest of the products' own estimates" in started["interval_basis"]
    again = await shop.call("subscribe_to_routine", {"product_ids": ROUTINE, "confirm": True}, user=ANA)
    assert again["reused"] and again["checkout_url"] == started["checkout_url"]

    await pay_simulated(shop, started["checkout_url"])
    await advance_clock(Commerce(shop.services), weeks * 7 + 1)  # the second delivery

    deliveries = await orders_with_lines(shop, sub["subscription_id"])
    assert len(deliveries) == 2
    for order, lines in deliveries:
        assert order.status == "paid" and order.total_minor == 3999
        assert sorted(line.product_id for line in lines) == sorted(ROUTINE)
        assert await shop.count(FulfilmentJob, col(FulfilmentJob.order_id) == order.id) == 1


async def test_a_routine_of_one_product_or_an_unknown_one_is_refused_with_what_to_do(shop: Shop) -> None:
    one = await shop.refused("subscribe_to_routine", {"product_ids": [SERUM, SERUM]}, user=ANA)
    assert "use subscribe for one product" in one
    unknown = await shop.refused(
        "subscribe_to_routine", {"product_ids": [SERUM, "prd_000000000000"]}, user=ANA
    )
    assert "build_routine lists" in unknown
    await shop.set_product(CLEANSER, stock=0)
    sold_out = await shop.refused("subscribe_to_routine", {"product_ids": ROUTINE}, user=ANA)
    assert "out of stock" in sold_out and "leave it out" in sold_out


async def test_a_routine_is_one_stripe_subscription_with_an_item_per_product_and_one_order_per_invoice(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    started = await stripe_shop.call(
        "subscribe_to_routine", {"product_ids": ROUTINE, "interval_weeks": 8, "confirm": True}, user=ANA
    )
    sub_id = started["subscription"]["subscription_id"]
    [created] = fake_stripe.posts("/v1/checkout/sessions")
    assert created.params["mode"] == "subscription"
    items: list[dict[str, Any]] = created.params["line_items"]
    assert [i["price_data"]["unit_amount"] for i in items] == ["2200", "1799"]
    assert all(i["price_data"]["recurring"] == {"interval": "week", "interval_count": "8"} for i in items)

    session_id = started["checkout_url"].rsplit("/", 1)[1]
    events = fake_stripe.complete_subscription(session_id)
    provider = fake_stripe.sessions[session_id]["subscription"]
    assert len(fake_stripe.subscriptions[provider]["items"]["data"]) == 2  # one subscription, two items
    for event in events + events:  # delivered twice: one order
        assert (await stripe_shop.webhook(event)).status_code == 200
    renewal = fake_stripe.renew(provider)
    assert len(renewal["data"]["object"]["lines"]["data"]) == 2  # one invoice for both products
    for _ in range(2):
        assert (await stripe_shop.webhook(renewal)).status_code == 200

    deliveries = await orders_with_lines(stripe_shop, sub_id)
    assert len(deliveries) == 2
    for order, lines in deliveries:
        assert order.status == "paid" and order.total_minor == 3999 and len(lines) == 2
        jobs = await stripe_shop.count(FulfilmentJob, col(FulfilmentJob.order_id) == order.id)
        assert jobs == 1
    [listed] = (await stripe_shop.call("list_subscriptions", user=ANA))["subscriptions"]
    assert listed["status"] == "active" and len(listed["items"]) == 2 and listed["interval_weeks"] == 8
