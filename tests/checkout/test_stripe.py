"""Checkout through the real stripe SDK against the Stripe fake: the session Shine asks for, idempotency
keys, outages, lost answers and a restart between creating an order and hearing it was paid."""

from __future__ import annotations

from decimal import Decimal

from shine_mcp.config import Settings
from shine_mcp.integrations.payments import LineItem, SessionRequest, StripeGateway
from shine_mcp.store.orders import FulfilmentJob, Order
from tests.checkout.conftest import SERUM, Shop, in_own_task, open_shop
from tests.fakes.stripe_api import API_KEY, FakeStripe

SESSIONS = "/v1/checkout/sessions"


async def test_checkout_asks_stripe_for_a_session_priced_from_the_catalog(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    result = await stripe_shop.buy(SERUM, 2)
    order_id = result["order"]["order_id"]

    [request] = fake_stripe.posts(SESSIONS)
    assert request.idempotency_key == f"shine-checkout-{order_id}"
    params = request.params
    assert params["mode"] == "payment"
    assert params["client_reference_id"] == order_id
    assert params["metadata"] == {"order_id": order_id}
    assert params["payment_intent_data"] == {"metadata": {"order_id": order_id}}
    assert params["line_items"] == [
        {
            "price_data": {
                "currency": "usd",
                "unit_amount": "2200",
                "product_data": {
                    "name": "Naturium Retinaldehyde Cream Serum 0.10%",
                    "metadata": {"product_id": SERUM},
                },
            },
            "quantity": "2",
        }
    ]
    # Shine's own return pages, with the signed token that shows the order to whoever comes back on them.
    assert params["success_url"].startswith(
        f"http://127.0.0.1:8000/checkout/success?session_id={{CHECKOUT_SESSION_ID}}&order_id={order_id}&sig="
    )
    assert params["cancel_url"].startswith(f"http://127.0.0.1:8000/checkout/cancel?order_id={order_id}&sig=")
    assert "US" in params["shipping_address_collection"]["allowed_countries"]
    session = fake_stripe.sessions[result["checkout_url"].rsplit("/", 1)[1]]
    assert session["amount_total"] == 4400
    assert result["simulated"] is False and result["notice"] is None


async def test_a_second_checkout_of_the_same_cart_does_not_call_stripe_again(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    first = await stripe_shop.buy(SERUM)
    again = await stripe_shop.call("checkout")
    assert again["checkout_url"] == first["checkout_url"]
    assert len(fake_stripe.posts(SESSIONS)) == 1


async def test_a_stripe_500_then_a_retry_gives_one_order_and_one_session(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    await stripe_shop.call("add_to_cart", {"product_id": SERUM})
    fake_stripe.fail_next(SESSIONS, 500)
    message = await stripe_shop.refused("checkout")
    assert "Stripe did not answer" in message and "not create a second one" in message

    result = await stripe_shop.call("checkout")
    attempts = fake_stripe.posts(SESSIONS)
    assert [a.status for a in attempts] == [500, 200]
    assert (
        attempts[0].idempotency_key
        == attempts[1].idempotency_key
        == f"shine-checkout-{result['order']['order_id']}"
    )
    assert len(fake_stripe.sessions) == 1
    assert await stripe_shop.count(Order) == 1


async def test_a_lost_answer_then_checkout_again_returns_the_same_session(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    await stripe_shop.call("add_to_cart", {"product_id": SERUM})
    fake_stripe.lose_next_response(SESSIONS)
    await stripe_shop.refused("checkout")
    [made] = fake_stripe.sessions  # Stripe made it; Shine never heard back

    result = await stripe_shop.call("checkout")
    assert result["checkout_url"].endswith(made)
    assert len(fake_stripe.sessions) == 1


async def test_a_lost_answer_is_recovered_by_the_webhook(stripe_shop: Shop, fake_stripe: FakeStripe) -> None:
    await stripe_shop.call("add_to_cart", {"product_id": SERUM})
    fake_stripe.lose_next_response(SESSIONS)
    await stripe_shop.refused("checkout")
    [(session_id, session)] = fake_stripe.sessions.items()
    order_id = session["client_reference_id"]
    assert (await stripe_shop.order(order_id)).checkout_session_id is None

    event = fake_stripe.complete(session_id)
    assert (await stripe_shop.webhook(event)).status_code == 200
    order = await stripe_shop.order(order_id)
    assert order.status == "paid" and order.checkout_session_id == session_id
    assert await stripe_shop.count(FulfilmentJob) == 1


async def test_an_order_paid_while_shine_was_stopped_is_recovered_on_the_success_page(
    stripe_settings: Settings, fake_stripe: FakeStripe
) -> None:
    async with in_own_task(open_shop(stripe_settings)) as before:
        result = await before.buy(SERUM)
    session_id = result["checkout_url"].rsplit("/", 1)[1]
    fake_stripe.complete(session_id)  # paid while Shine was down; the webhook never arrived

    back = fake_stripe.sessions[session_id]["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
    async with in_own_task(open_shop(stripe_settings)) as after:
        page = await after.http.get(back)
        assert page.status_code == 200
        assert "payment is confirmed" in page.text and result["order"]["order_id"] in page.text
        order = await after.order(result["order"]["order_id"])
        assert order.status == "paid" and order.payment_intent_id is not None
        assert await after.count(FulfilmentJob) == 1
        # The webhook arriving late changes nothing more.
        await after.webhook(fake_stripe.last_event("checkout.session.completed"))
        assert await after.count(FulfilmentJob) == 1


async def test_the_success_page_trusts_stripe_not_the_query_string(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    result = await stripe_shop.buy(SERUM)
    session_id = result["checkout_url"].rsplit("/", 1)[1]
    back = fake_stripe.sessions[session_id]["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
    page = await stripe_shop.http.get(back)
    assert "Waiting for your payment" in page.text  # the shopper came back without paying
    missing = await stripe_shop.http.get("/checkout/success", params={"session_id": "cs_test_made_up"})
    assert missing.status_code == 404


async def test_the_sdk_retries_an_outage_with_the_same_idempotency_key(fake_stripe: FakeStripe) -> None:
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    gateway = StripeGateway(API_KEY, None, api_base=fake_stripe.url, max_network_retries=2, sleep=no_wait)
    try:
        fake_stripe.fail_next(SESSIONS, 500, should_retry=True)
        request = SessionRequest(
            order_id="ord_0123456789abcdef0123",
            user_id="usr_x",
            currency="USD",
            lines=(LineItem(SERUM, "Serum", 2200, 1),),
            success_url="http://127.0.0.1:8000/ok",
            cancel_url="http://127.0.0.1:8000/no",
        )
        session = await gateway.create_session(
            request, idempotency_key="shine-checkout-ord_0123456789abcdef0123"
        )
    finally:
        await gateway.close()
    attempts = fake_stripe.posts(SESSIONS)
    assert [a.status for a in attempts] == [500, 200]
    assert {a.idempotency_key for a in attempts} == {"shine-checkout-ord_0123456789abcdef0123"}
    assert len(waits) == 1 and session.amount_total == 2200


async def test_a_wrong_stripe_key_is_reported_to_the_merchant_not_leaked(
    stripe_settings: Settings, fake_stripe: FakeStripe
) -> None:
    wrong = stripe_settings.model_copy(
        update={"stripe_secret_key": stripe_settings.stripe_secret_key.__class__("sk_test_wrong")}
    )
    async with in_own_task(open_shop(wrong)) as shop:
        await shop.call("add_to_cart", {"product_id": SERUM})
        message = await shop.refused("checkout")
    assert "STRIPE_SECRET_KEY" in message and "sk_test_wrong" not in message


async def test_there_is_no_simulated_checkout_when_stripe_is_configured(stripe_shop: Shop) -> None:
    assert (await stripe_shop.http.get("/simulated-checkout/cs_sim_anything")).status_code == 404
    health = (await stripe_shop.http.get("/healthz")).json()
    assert health["integrations"]["payments"] == "stripe"


async def test_admin_refund_goes_to_stripe_with_an_idempotency_key(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    result = await stripe_shop.buy(SERUM, 2)
    order_id = result["order"]["order_id"]
    await stripe_shop.webhook(fake_stripe.complete(result["checkout_url"].rsplit("/", 1)[1]))

    refund = await stripe_shop.call("refund_order", {"order_id": order_id, "amount": Decimal("12.50")})
    [request] = fake_stripe.posts("/v1/refunds")
    assert request.idempotency_key == f"shine-refund-{refund['refund_id']}"
    assert request.params["amount"] == "1250"
    assert refund["order"]["status"] == "partially_refunded"
    assert refund["order"]["refunded"]["amount_minor"] == 1250
