"""The last unit paid for twice: the first payment ships, the second is held for the merchant (never sent
to fulfilment), its buyer is told in plain words, and the merchant sees it among the orders to deal with."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from sqlmodel import col

from shine_mcp.config import Settings
from shine_mcp.integrations.payments import SimulatedGateway
from shine_mcp.orders.service import Commerce
from shine_mcp.store.catalog import demo_catalog_records, upsert_products
from shine_mcp.store.db import open_database
from shine_mcp.store.orders import FulfilmentJob, held_orders
from tests.checkout.conftest import BASE_URL, SERUM, Shop, in_own_task, open_shop, shop_settings
from tests.checkout.test_cli_orders import shine
from tests.fakes.stripe_api import FakeStripe


async def two_checkouts_of_the_last_unit(
    shop: Shop, other: Shop | None = None, buyers: tuple[str, str] = ("usr_ana", "usr_bob")
) -> tuple[dict[str, str], dict[str, str]]:
    """Ana and Bob each put the one serum left in their cart and check out before either pays (Bob through
    `other`, another Shine process on the same database, when given)."""
    await shop.set_product(SERUM, stock=1)
    sellers = (shop, other or shop)
    made = [await where.buy(SERUM, 1, user=who) for where, who in zip(sellers, buyers, strict=True)]
    first, second = (
        {"order": m["order"]["order_id"], "session": m["checkout_url"].rsplit("/", 1)[1]} for m in made
    )
    return first, second


async def test_the_second_payment_for_the_last_unit_is_held_and_its_buyer_told(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    ana, bob = await two_checkouts_of_the_last_unit(stripe_shop)

    for paid in (ana, bob):
        response = await stripe_shop.webhook(fake_stripe.complete(paid["session"]))
        assert response.status_code == 200 and response.json()["outcome"] == "applied"

    first, second = await stripe_shop.order(ana["order"]), await stripe_shop.order(bob["order"])
    assert (first.status, first.hold_reason) == ("paid", None)
    assert (second.status, second.hold_reason) == ("paid", "oversold")
    assert await stripe_shop.stock(SERUM) == 0
    # Only the first goes to fulfilment.
    assert await stripe_shop.count(FulfilmentJob, col(FulfilmentJob.order_id) == ana["order"]) == 1
    assert await stripe_shop.count(FulfilmentJob, col(FulfilmentJob.order_id) == bob["order"]) == 0
    # The merchant's list of orders to deal with has it, with what ran out.
    assert [o.id for o in await held_orders(stripe_shop.services.db)] == [bob["order"]]
    assert second.attention is not None and "Retinaldehyde Cream Serum" in second.attention

    # Bob is told, wherever he looks at his order; Ana's order reads as usual.
    seen = await stripe_shop.call("get_order", {"order_id": bob["order"]}, user="usr_bob")
    assert seen["hold_reason"] == "oversold"
    assert "sold out" in seen["next_steps"] and "refund" in seen["next_steps"]
    listed = await stripe_shop.call("list_orders", user="usr_bob")
    assert "sold out" in listed["orders"][0]["next_steps"]
    # The page Stripe sends Bob back to (with the signed link that shows the order to its owner).
    success = fake_stripe.sessions[bob["session"]]["success_url"].replace(
        "{CHECKOUT_SESSION_ID}", bob["session"]
    )
    page = await stripe_shop.http.get(success.removeprefix(BASE_URL))
    assert page.status_code == 200 and "sold out just before your payment" in page.text
    theirs = await stripe_shop.call("get_order", {"order_id": ana["order"]}, user="usr_ana")
    assert theirs["hold_reason"] is None and "sold out" not in theirs["next_steps"]


async def test_a_held_order_leaves_the_merchants_list_once_refunded(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    ana, bob = await two_checkouts_of_the_last_unit(stripe_shop)
    for paid in (ana, bob):
        await stripe_shop.webhook(fake_stripe.complete(paid["session"]))

    assert [o.id for o in await held_orders(stripe_shop.services.db)] == [bob["order"]]

    await stripe_shop.call("refund_order", {"order_id": bob["order"]}, admin=True, user="usr_root")

    assert await held_orders(stripe_shop.services.db) == []
    refunded = await stripe_shop.call("get_order", {"order_id": bob["order"]}, user="usr_bob")
    assert refunded["status"] == "refunded" and refunded["next_steps"] == "Refunded in full."


async def test_a_payment_of_another_amount_is_held_by_its_reason_not_by_its_note(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    bought = await stripe_shop.buy(SERUM, 1, user="usr_ana")
    order_id, session_id = bought["order"]["order_id"], bought["checkout_url"].rsplit("/", 1)[1]
    event = fake_stripe.complete(session_id)
    event["data"]["object"]["amount_total"] = 100  # $1.00 for a $22.00 order

    assert (await stripe_shop.webhook(event)).status_code == 200

    order = await stripe_shop.order(order_id)
    assert (order.status, order.hold_reason) == ("paid", "amount_mismatch")
    assert await stripe_shop.count(FulfilmentJob, col(FulfilmentJob.order_id) == order_id) == 0
    assert [o.id for o in await held_orders(stripe_shop.services.db)] == [order_id]
    seen = await stripe_shop.call("get_order", {"order_id": order_id}, user="usr_ana")
    assert seen["hold_reason"] == "amount_mismatch" and "checking the payment" in seen["next_steps"]


def test_the_pending_fulfilment_list_shows_the_held_order(sim_settings: Settings) -> None:
    async def arrange() -> tuple[str, str]:
        async with in_own_task(open_shop(sim_settings)) as shop:
            ana, bob = await two_checkouts_of_the_last_unit(shop)
            gateway = Commerce(shop.services).gateway()
            assert isinstance(gateway, SimulatedGateway)
            for paid in (ana, bob):
                await gateway.pay(paid["session"])
            return ana["order"], bob["order"]

    first, held = asyncio.run(arrange())

    listing = shine(sim_settings, "pending-fulfilment")
    assert held in listing and "sold out before payment" in listing
    rows = {row["order_id"]: row for row in json.loads(shine(sim_settings, "pending-fulfilment", "--json"))}
    assert rows[held]["fulfilment"] == "held" and rows[held]["hold_reason"] == "oversold"
    assert rows[held]["items"][0]["product_id"] == SERUM
    assert rows[first]["fulfilment"] == "pending"  # the first payment's order is on its way as usual


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_two_payments_at_once_for_the_last_unit_hold_exactly_one(
    backend: str, tmp_path: Path, settings: Settings, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
        config = shop_settings(tmp_path / "pg").model_copy(update={"database_url": url})
        db = await open_database(config)
        await upsert_products(db, demo_catalog_records()[1], source="demo")
        await db.close()
    else:
        config = shop_settings(settings.data_dir)
    buyers = (f"usr_{uuid.uuid4().hex[:12]}", f"usr_{uuid.uuid4().hex[:12]}")
    # Two Shine processes (each with its own engine) on one database, each receiving one payment.
    async with in_own_task(open_shop(config)) as one, in_own_task(open_shop(config)) as two:
        stock = await one.stock(SERUM)
        try:
            ana, bob = await two_checkouts_of_the_last_unit(one, two, buyers)
            gateways = [Commerce(shop.services).gateway() for shop in (one, two)]
            simulated = [g for g in gateways if isinstance(g, SimulatedGateway)]
            assert len(simulated) == 2
            await asyncio.gather(
                *(g.pay(paid["session"]) for g, paid in zip(simulated, (ana, bob), strict=True))
            )

            orders = [await one.order(paid["order"]) for paid in (ana, bob)]
            assert [o.status for o in orders] == ["paid", "paid"]
            assert sorted(o.hold_reason or "shipped" for o in orders) == ["oversold", "shipped"]
            ids = [o.id for o in orders]
            assert await one.count(FulfilmentJob, col(FulfilmentJob.order_id).in_(ids)) == 1
            assert await one.stock(SERUM) == 0
        finally:
            await one.set_product(SERUM, stock=stock)  # for the tests sharing this database
