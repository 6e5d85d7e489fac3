"""`/stripe/webhook`: Stripe's signature scheme verified by the SDK, each event applied once, events in any
order, and exactly-once effects (stock, outbox, cart, refunds) checked in the database."""

from __future__ import annotations

import time

from sqlmodel import select

from shine_mcp.store.carts import CartItem
from shine_mcp.store.orders import FulfilmentJob, ProcessedEvent, Refund
from tests.checkout.conftest import SERUM, Shop, in_own_task, open_shop
from tests.fakes.stripe_api import FakeStripe


async def checked_out(shop: Shop, quantity: int = 2) -> tuple[str, str]:
    result = await shop.buy(SERUM, quantity)
    return result["order"]["order_id"], result["checkout_url"].rsplit("/", 1)[1]


async def test_a_paid_checkout_marks_the_order_paid_once(stripe_shop: Shop, fake_stripe: FakeStripe) -> None:
    stock = await stripe_shop.stock(SERUM)
    order_id, session_id = await checked_out(stripe_shop, 2)

    response = await stripe_shop.webhook(fake_stripe.complete(session_id))
    assert response.status_code == 200
    assert response.json()["outcome"] == "applied"
    order = await stripe_shop.order(order_id)
    assert order.status == "paid"
    assert order.payment_intent_id is not None and order.payment_intent_id.startswith("pi_")
    assert order.email == "ana@example.com"
    assert order.shipping is not None and order.shipping["address"]["city"] == "Springfield"
    assert await stripe_shop.stock(SERUM) == stock - 2
    assert await stripe_shop.count(CartItem) == 0  # the cart is emptied by the payment
    [job] = await _jobs(stripe_shop)
    assert job.order_id == order_id and job.payload["items"][0]["quantity"] == 2
    assert job.payload["ship_to"]["address"]["postal_code"] == "97477"


async def test_a_replayed_event_changes_nothing(stripe_shop: Shop, fake_stripe: FakeStripe) -> None:
    stock = await stripe_shop.stock(SERUM)
    order_id, session_id = await checked_out(stripe_shop, 2)
    event = fake_stripe.complete(session_id)

    first, second = await stripe_shop.webhook(event), await stripe_shop.webhook(event)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["outcome"] == "duplicate"
    assert await stripe_shop.stock(SERUM) == stock - 2
    assert await stripe_shop.count(FulfilmentJob) == 1
    assert await stripe_shop.count(ProcessedEvent, ProcessedEvent.event_id == event["id"]) == 1


async def test_a_bad_signature_is_refused_and_nothing_changes(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    order_id, session_id = await checked_out(stripe_shop)
    event = fake_stripe.complete(session_id)
    response = await stripe_shop.webhook(event, secret="whsec_someone_else")
    assert response.status_code == 400
    assert (await stripe_shop.order(order_id)).status == "pending"
    assert await stripe_shop.count(ProcessedEvent) == 0

    unsigned = await stripe_shop.http.post("/stripe/webhook", content=b'{"id": "evt_1"}')
    assert unsigned.status_code == 400


async def test_a_stale_timestamp_is_refused(stripe_shop: Shop, fake_stripe: FakeStripe) -> None:
    order_id, session_id = await checked_out(stripe_shop)
    event = fake_stripe.complete(session_id)
    response = await stripe_shop.webhook(event, timestamp=int(time.time()) - 600)
    assert response.status_code == 400
    assert (await stripe_shop.order(order_id)).status == "pending"


async def test_completed_arriving_after_expired_still_counts_the_payment(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    order_id, session_id = await checked_out(stripe_shop)
    completed = fake_stripe.complete(session_id)
    expired = fake_stripe.emit(
        "checkout.session.expired", {**completed["data"]["object"], "status": "expired"}
    )

    await stripe_shop.webhook(expired)
    assert (await stripe_shop.order(order_id)).status == "expired"
    await stripe_shop.webhook(completed)
    order = await stripe_shop.order(order_id)
    assert order.status == "paid"
    assert order.attention is not None and "paid after it was expired" in order.attention
    assert await stripe_shop.count(FulfilmentJob) == 1


async def test_expired_arriving_after_completed_is_ignored(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    order_id, session_id = await checked_out(stripe_shop)
    completed = fake_stripe.complete(session_id)
    expired = fake_stripe.emit(
        "checkout.session.expired", {**completed["data"]["object"], "status": "expired"}
    )
    await stripe_shop.webhook(completed)
    await stripe_shop.webhook(expired)
    assert (await stripe_shop.order(order_id)).status == "paid"


async def test_an_expired_checkout_frees_the_cart_for_a_new_order(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    order_id, session_id = await checked_out(stripe_shop)
    await stripe_shop.webhook(fake_stripe.expire_by_stripe(session_id))
    assert (await stripe_shop.order(order_id)).status == "expired"
    again = await stripe_shop.call("checkout")
    assert again["order"]["order_id"] != order_id and again["order"]["status"] == "pending"


async def test_a_refund_made_in_the_stripe_dashboard_is_recorded(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    order_id, session_id = await checked_out(stripe_shop, 2)
    await stripe_shop.webhook(fake_stripe.complete(session_id))
    order = await stripe_shop.order(order_id)
    assert order.payment_intent_id is not None

    event = fake_stripe.refund_in_dashboard(order.payment_intent_id, 1000)
    await stripe_shop.webhook(event)
    await stripe_shop.webhook(event)
    order = await stripe_shop.order(order_id)
    assert (order.status, order.amount_refunded_minor) == ("partially_refunded", 1000)
    [refund] = await _refunds(stripe_shop)
    assert (refund.amount_minor, refund.source) == (1000, "provider")

    await stripe_shop.webhook(fake_stripe.refund_in_dashboard(order.payment_intent_id, 3400))
    order = await stripe_shop.order(order_id)
    assert (order.status, order.amount_refunded_minor) == ("refunded", 4400)
    assert sum(r.amount_minor for r in await _refunds(stripe_shop)) == 4400


async def test_a_refund_event_before_the_payment_event_is_not_lost(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    order_id, session_id = await checked_out(stripe_shop, 2)
    completed = fake_stripe.complete(session_id)
    intent = completed["data"]["object"]["payment_intent"]
    refunded = fake_stripe.refund_in_dashboard(intent, 4400)

    await stripe_shop.webhook(refunded)  # found through the payment's metadata
    await stripe_shop.webhook(completed)
    order = await stripe_shop.order(order_id)
    assert (order.status, order.amount_refunded_minor) == ("refunded", 4400)
    assert await stripe_shop.count(FulfilmentJob) == 0  # never ship what was refunded in full


async def test_a_dispute_flags_the_order_for_the_merchant(stripe_shop: Shop, fake_stripe: FakeStripe) -> None:
    order_id, session_id = await checked_out(stripe_shop)
    completed = fake_stripe.complete(session_id)
    await stripe_shop.webhook(completed)
    await stripe_shop.webhook(fake_stripe.dispute(completed["data"]["object"]["payment_intent"]))
    order = await stripe_shop.order(order_id)
    assert order.status == "disputed"
    assert order.attention is not None and "dispute" in order.attention and "fraudulent" in order.attention


async def test_a_delayed_payment_waits_then_settles(stripe_shop: Shop, fake_stripe: FakeStripe) -> None:
    order_id, session_id = await checked_out(stripe_shop)
    await stripe_shop.webhook(fake_stripe.complete(session_id, payment_status="unpaid"))
    order = await stripe_shop.order(order_id)
    assert order.status == "pending" and order.payment_intent_id is not None
    assert await stripe_shop.count(FulfilmentJob) == 0

    await stripe_shop.webhook(fake_stripe.settle(session_id))
    assert (await stripe_shop.order(order_id)).status == "paid"
    assert await stripe_shop.count(FulfilmentJob) == 1


async def test_a_failed_delayed_payment_frees_the_cart(stripe_shop: Shop, fake_stripe: FakeStripe) -> None:
    order_id, session_id = await checked_out(stripe_shop)
    await stripe_shop.webhook(fake_stripe.complete(session_id, payment_status="unpaid"))
    await stripe_shop.webhook(fake_stripe.settle(session_id, succeeded=False))
    assert (await stripe_shop.order(order_id)).status == "payment_failed"
    assert await stripe_shop.count(CartItem) == 1  # still there to try again
    again = await stripe_shop.call("checkout")
    assert again["order"]["order_id"] != order_id


async def test_events_for_other_things_are_acknowledged_and_ignored(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    other = fake_stripe.emit("customer.created", {"id": "cus_1", "object": "customer"})
    response = await stripe_shop.webhook(other)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    stranger = fake_stripe.emit(
        "checkout.session.completed",
        {"id": "cs_test_other_shop", "object": "checkout.session", "client_reference_id": "ord_not_ours"},
    )
    response = await stripe_shop.webhook(stranger)
    assert response.status_code == 200 and response.json()["outcome"] == "unknown_order"


async def test_without_a_webhook_secret_events_are_refused_for_a_retry(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    config = stripe_shop.settings.model_copy(update={"stripe_webhook_secret": None})
    async with in_own_task(open_shop(config)) as shop:
        order_id, session_id = await checked_out(shop)
        response = await shop.webhook(fake_stripe.complete(session_id))
    assert response.status_code == 503  # Stripe delivers it again once the merchant sets the secret
    assert (await stripe_shop.order(order_id)).status == "pending"


async def _jobs(shop: Shop) -> list[FulfilmentJob]:
    async with shop.services.db.session() as session:
        return list((await session.execute(select(FulfilmentJob))).scalars())


async def _refunds(shop: Shop) -> list[Refund]:
    async with shop.services.db.session() as session:
        return list((await session.execute(select(Refund))).scalars())
