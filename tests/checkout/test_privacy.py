"""A shopper's commerce data on export and erasure: carts go, orders stay for the books without the buyer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel import select

from shine_mcp.auth.accounts import upsert_user
from shine_mcp.clock import utcnow
from shine_mcp.integrations.google import VerifiedPerson
from shine_mcp.orders import machine
from shine_mcp.orders.privacy import IN_FLIGHT_NOTE, erase_user_commerce, erased, export_user_commerce
from shine_mcp.orders.service import Commerce
from shine_mcp.store.carts import Cart, CartItem
from shine_mcp.store.orders import FulfilmentJob, Order, SimulatedSession
from tests.checkout.conftest import CLEANSER, SERUM, Shop
from tests.checkout.test_simulated import press
from tests.fakes.stripe_api import FakeStripe

ANA, BEN = "user-ana", "user-ben"


async def paid_order(shop: Shop, fake: FakeStripe, user: str) -> str:
    result = await shop.buy(SERUM, 2, user=user)
    session_id = result["checkout_url"].rsplit("/", 1)[1]
    assert (await shop.webhook(fake.complete(session_id))).status_code == 200
    return str(result["order"]["order_id"])


async def test_export_holds_the_caller_s_cart_and_orders_only(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    order_id = await paid_order(stripe_shop, fake_stripe, ANA)
    await stripe_shop.call("add_to_cart", {"product_id": CLEANSER, "quantity": 3}, user=ANA)
    await stripe_shop.buy(SERUM, 1, user=BEN)

    exported = await export_user_commerce(stripe_shop.services.db, ANA)

    assert [o["id"] for o in exported["orders"]] == [order_id]
    [order] = exported["orders"]
    assert order["email"] == "ana@example.com" and order["lines"][0]["quantity"] == 2
    assert "lock_version" not in order and "attention" not in order
    assert [(i["product_id"], i["quantity"]) for i in exported["cart"]["items"]] == [(CLEANSER, 3)]
    assert (await export_user_commerce(stripe_shop.services.db, "nobody")) == {
        "cart": None,
        "orders": [],
        "subscriptions": [],
        "memberships": [],
    }


async def test_erasure_deletes_the_cart_and_strips_the_buyer_from_orders(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    db = stripe_shop.services.db
    paid = await paid_order(stripe_shop, fake_stripe, ANA)
    unpaid = (await stripe_shop.buy(CLEANSER, 1, user=ANA))["order"]["order_id"]
    await stripe_shop.call("cancel_order", {"order_id": unpaid, "confirm": True}, user=ANA)
    await stripe_shop.call("add_to_cart", {"product_id": CLEANSER, "quantity": 1}, user=ANA)
    bens = (await stripe_shop.buy(SERUM, 1, user=BEN))["order"]["order_id"]

    counts = await erase_user_commerce(db, ANA)

    assert counts == {"carts_deleted": 1, "orders_anonymised": 2, "addresses_kept_until_shipped": 1}
    assert await stripe_shop.count(Cart, Cart.user_id == ANA) == 0
    assert await stripe_shop.count(CartItem) == 1  # Ben's cart item, held by his pending order's cart
    assert (await stripe_shop.call("list_orders", user=ANA))["orders"] == []
    kept, cancelled = await stripe_shop.order(paid), await stripe_shop.order(unpaid)
    for order in (kept, cancelled):
        assert erased(order.user_id) and order.email is None
        assert order.total_minor > 0 and order.status in ("paid", "cancelled")
    assert cancelled.shipping is None
    # Still to be shipped: the address stays so the merchant can deliver, flagged for deletion.
    assert kept.shipping is not None and kept.attention is not None and IN_FLIGHT_NOTE in kept.attention
    assert (await stripe_shop.order(bens)).user_id == BEN
    assert (await export_user_commerce(db, ANA)) == {
        "cart": None,
        "orders": [],
        "subscriptions": [],
        "memberships": [],
    }


async def test_shipping_an_erased_buyer_s_order_drops_the_address(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    db = stripe_shop.services.db
    order_id = await paid_order(stripe_shop, fake_stripe, ANA)
    await erase_user_commerce(db, ANA)

    ledger = Commerce(stripe_shop.services).ledger
    event = machine.Shipped(at=utcnow(), tracking_number="1Z999", carrier="UPS")
    await ledger.apply(order_id, event, dedupe=("merchant", f"{order_id}:1Z999", "shipped"))

    order = await stripe_shop.order(order_id)
    assert order.status == "shipped" and order.shipping is None
    assert not order.attention or IN_FLIGHT_NOTE not in order.attention
    [job] = await jobs_of(stripe_shop, order_id)
    assert erased(job.user_id)
    assert await stripe_shop.count(Order, Order.user_id == ANA) == 0


async def jobs_of(shop: Shop, order_id: str) -> list[FulfilmentJob]:
    async with shop.services.db.session() as session:
        query = select(FulfilmentJob).where(FulfilmentJob.order_id == order_id)
        return list((await session.execute(query)).scalars())


async def test_erasure_empties_the_buyer_s_details_in_stored_checkout_sessions(shop: Shop) -> None:
    db = shop.services.db
    person = VerifiedPerson(email="Cleo.Buyer@example.com", email_verified=True, name="Cleo Buyer")
    user = await upsert_user(db, person, now=datetime.now(UTC))
    result = await shop.buy(SERUM, 1, user=user.id)
    assert (await press(shop, result["checkout_url"], "pay")).status_code == 303
    [stored] = await simulated_sessions(shop)
    before = json.dumps(stored.data)
    assert "cleo.buyer@example.com" in before and "Simulation Street" in before  # what Stripe would hold
    [job] = await jobs_of(shop, result["order"]["order_id"])
    assert job.status == "pending" and job.payload["email"] == "cleo.buyer@example.com"

    await erase_user_commerce(db, user.id)

    [stored] = await simulated_sessions(shop)
    after = json.dumps(stored.data)
    assert "cleo.buyer@example.com" not in after and "Simulated shopper" not in after
    assert "Simulation Street" not in after and erased(stored.user_id)
    assert stored.data["customer_details"] is None and stored.data["collected_information"] is None
    assert stored.data["amount_total"] > 0 and stored.data["status"] == "complete"  # the payment's facts stay
    [job] = await jobs_of(shop, result["order"]["order_id"])
    # Not yet handed to the partner: the address stays so it can be delivered; the email does not.
    assert job.payload["email"] is None and job.payload["ship_to"] is not None


async def simulated_sessions(shop: Shop) -> list[SimulatedSession]:
    async with shop.services.db.session() as session:
        return list((await session.execute(select(SimulatedSession))).scalars())
