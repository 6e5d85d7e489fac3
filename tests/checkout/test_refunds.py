"""Refunds: the buyer asks within the return window; admins refund, partly or fully, never more than paid,
and a provider outage is retried as the same refund."""

from __future__ import annotations

from typing import Any

from shine_mcp.integrations.payments import SimulatedGateway
from shine_mcp.orders.service import Commerce
from shine_mcp.store.orders import Refund
from tests.checkout.conftest import SERUM, Shop
from tests.fakes.stripe_api import FakeStripe


async def paid(shop: Shop, quantity: int = 2, *, user: str | None = None) -> dict[str, Any]:
    result = await shop.buy(SERUM, quantity, user=user)
    gateway = Commerce(shop.services).gateway()
    assert isinstance(gateway, SimulatedGateway)
    await gateway.pay(result["checkout_url"].rsplit("/", 1)[1])
    return result["order"]


async def test_a_buyer_asks_for_a_refund_within_the_window(shop: Shop) -> None:
    order = await paid(shop, user="usr_ana")
    asked = await shop.call(
        "request_refund", {"order_id": order["order_id"], "reason": "it stings"}, user="usr_ana"
    )
    assert asked["refund_requested"] is True and asked["status"] == "paid"  # no money moved yet
    again = await shop.call(
        "request_refund", {"order_id": order["order_id"], "reason": "again"}, user="usr_ana"
    )
    assert again["refund_requested"] is True
    stored = await shop.order(order["order_id"])
    assert stored.refund_reason == "it stings" and stored.attention == "the buyer asked for a refund"


async def test_a_refund_request_after_the_window_is_refused(shop: Shop) -> None:
    order = await paid(shop)
    await shop.age_order(order["order_id"], days=31)
    message = await shop.refused("request_refund", {"order_id": order["order_id"], "reason": "too late?"})
    assert "30-day return window" in message


async def test_an_unpaid_order_is_cancelled_not_refunded(shop: Shop) -> None:
    result = await shop.buy(SERUM)
    message = await shop.refused(
        "request_refund", {"order_id": result["order"]["order_id"], "reason": "changed my mind"}
    )
    assert "cancel_order" in message


async def test_a_paid_order_cannot_be_cancelled(shop: Shop) -> None:
    order = await paid(shop)
    assert "request_refund" in await shop.refused("cancel_order", {"order_id": order["order_id"]})


async def test_partial_then_full_refund_never_exceeds_what_was_paid(shop: Shop) -> None:
    order = await paid(shop, 2)  # $44.00
    order_id = order["order_id"]
    first = await shop.call("refund_order", {"order_id": order_id, "amount": 5})
    assert first["amount"]["amount_minor"] == 500 and first["status"] == "succeeded"
    assert first["order"]["status"] == "partially_refunded"

    assert "at most $39.00" in await shop.refused("refund_order", {"order_id": order_id, "amount": "39.01"})
    rest = await shop.call("refund_order", {"order_id": order_id})
    assert rest["amount"]["amount_minor"] == 3900
    assert rest["order"]["status"] == "refunded" and rest["order"]["refunded"]["amount_minor"] == 4400
    assert "refunded in full" in await shop.refused("refund_order", {"order_id": order_id})
    # The simulated provider's charge.refunded events went through the webhook and added nothing twice.
    assert await shop.count(Refund) == 2


async def test_refund_amounts_finer_than_a_cent_are_refused(shop: Shop) -> None:
    order = await paid(shop)
    assert "decimals" in await shop.refused(
        "refund_order", {"order_id": order["order_id"], "amount": "1.005"}
    )


async def test_refunds_are_for_admins_only(shop: Shop) -> None:
    order = await paid(shop, user="usr_ana")
    message = await shop.refused("refund_order", {"order_id": order["order_id"]}, user="usr_ana")
    assert "admins" in message
    assert (await shop.order(order["order_id"])).amount_refunded_minor == 0
    admin = await shop.call(
        "refund_order", {"order_id": order["order_id"], "amount": 1}, user="usr_boss", admin=True
    )
    assert admin["amount"]["amount_minor"] == 100


async def test_an_unpaid_order_cannot_be_refunded(shop: Shop) -> None:
    result = await shop.buy(SERUM)
    assert "nothing was paid" in await shop.refused("refund_order", {"order_id": result["order"]["order_id"]})


async def test_a_stripe_outage_during_a_refund_is_retried_as_the_same_refund(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    result = await stripe_shop.buy(SERUM, 2)
    await stripe_shop.webhook(fake_stripe.complete(result["checkout_url"].rsplit("/", 1)[1]))
    order_id = result["order"]["order_id"]

    fake_stripe.lose_next_response("/v1/refunds")  # Stripe refunds, but Shine never hears back
    message = await stripe_shop.refused("refund_order", {"order_id": order_id, "amount": 10})
    assert "call refund_order again" in message
    assert "is not confirmed yet" in await stripe_shop.refused(
        "refund_order", {"order_id": order_id, "amount": 3}
    )

    refund = await stripe_shop.call("refund_order", {"order_id": order_id})
    attempts = fake_stripe.posts("/v1/refunds")
    assert len(attempts) == 2 and attempts[0].idempotency_key == attempts[1].idempotency_key
    assert len(fake_stripe.refunds) == 1  # one refund at Stripe
    assert refund["amount"]["amount_minor"] == 1000 and refund["order"]["refunded"]["amount_minor"] == 1000
    # Stripe's own charge.refunded event, arriving later, adds nothing.
    await stripe_shop.webhook(fake_stripe.last_event("charge.refunded"))
    assert (await stripe_shop.order(order_id)).amount_refunded_minor == 1000
    assert await stripe_shop.count(Refund) == 1
