"""With zero keys: the simulated checkout end to end, through the same webhook handler, state machine and
fulfilment outbox as Stripe, and labelled as a simulation wherever a person sees it."""

from __future__ import annotations

import re
from datetime import timedelta

import anyio
import httpx
from sqlalchemy import update
from sqlmodel import col

from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.integrations.payments import SimulatedGateway, sign_payload
from shine_mcp.orders.fulfilment import FulfilmentWorker
from shine_mcp.orders.service import Commerce
from shine_mcp.store.orders import FulfilmentJob, ProcessedEvent, SimulatedSession
from tests.checkout.conftest import BASE_URL, SERUM, Shop, in_own_task, open_shop
from web_shell.payments import PaymentsWeb


def local(url: str) -> str:
    return url.removeprefix(BASE_URL)


async def open_page(shop: Shop, checkout_url: str) -> tuple[str, str]:
    page = await shop.http.get(local(checkout_url))
    assert page.status_code == 200
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    return page.text, token.group(1) if token else ""


async def press(shop: Shop, checkout_url: str, button: str) -> httpx.Response:
    _, token = await open_page(shop, checkout_url)
    return await shop.http.post(f"{local(checkout_url)}/{button}", data={"csrf": token})


async def test_zero_key_checkout_runs_end_to_end_through_the_webhook(shop: Shop) -> None:
    result = await shop.buy(SERUM, 2)
    order_id, url = result["order"]["order_id"], result["checkout_url"]

    page, token = await open_page(shop, url)
    assert "SIMULATED CHECKOUT: no real payment" in page
    assert "Pay (simulated)</button>" in page and "Cancel</button>" in page
    assert "$44.00" in page and "Retinaldehyde Cream Serum" in page and token

    paid = await shop.http.post(f"{local(url)}/pay", data={"csrf": token})
    assert paid.status_code == 303
    assert paid.headers["location"].startswith(f"{BASE_URL}/checkout/success?session_id=cs_sim_")
    success = await shop.http.get(local(paid.headers["location"]))
    assert "payment is confirmed" in success.text and "no real payment was taken" in success.text

    order = await shop.order(order_id)
    assert (
        order.status == "paid" and order.payment_intent_id and order.payment_intent_id.startswith("pi_sim_")
    )
    assert order.shipping is not None and order.shipping["name"] == "Simulated shopper"
    # It came through the webhook handler: the event id is recorded like Stripe's.
    assert await shop.count(ProcessedEvent, col(ProcessedEvent.source) == "stripe") == 1

    commerce = Commerce(shop.services)
    worker = FulfilmentWorker(commerce.db, commerce.ledger, shop.settings)
    assert await worker.run_once() == 1
    assert (await shop.order(order_id)).status == "fulfilling"
    async with shop.services.db.session() as session:
        job = (await session.execute(FulfilmentJob.__table__.select())).one()
    assert job.status == "local" and job.partner == "local"
    assert (await shop.call("get_order", {"order_id": order_id}))["simulated"] is True


async def test_the_background_worker_hands_a_paid_order_over_at_once(sim_settings: Settings) -> None:
    config = sim_settings.model_copy(update={"fulfilment_worker": True})
    async with in_own_task(open_shop(config)) as shop:
        web = next(
            r.endpoint.__self__ for r in shop.app.routes if getattr(r, "path", "") == "/stripe/webhook"
        )  # type: ignore[attr-defined]
        assert isinstance(web, PaymentsWeb)
        result = await shop.buy(SERUM)
        await press(shop, result["checkout_url"], "pay")
        with anyio.fail_after(5):
            while True:
                seen = web.worker.passes
                if (await shop.order(result["order"]["order_id"])).status == "fulfilling":
                    break
                await web.worker.pass_after(seen)


async def test_pay_needs_the_page_s_form_token(shop: Shop) -> None:
    result = await shop.buy(SERUM)
    forged = await shop.http.post(f"{local(result['checkout_url'])}/pay", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert (await shop.order(result["order"]["order_id"])).status == "pending"


async def test_cancel_goes_back_and_keeps_the_order_payable(shop: Shop) -> None:
    result = await shop.buy(SERUM)
    order_id = result["order"]["order_id"]
    back = await press(shop, result["checkout_url"], "cancel")
    assert back.status_code == 303
    assert back.headers["location"].startswith(f"{BASE_URL}/checkout/cancel?order_id={order_id}&sig=")
    page = await shop.http.get(local(back.headers["location"]))
    assert "without paying" in page.text and "cart is kept" in page.text
    assert (await shop.order(order_id)).status == "pending"


async def test_pressing_pay_twice_pays_once(shop: Shop) -> None:
    stock = await shop.stock(SERUM)
    result = await shop.buy(SERUM, 3)
    _, token = await open_page(shop, result["checkout_url"])
    for _ in range(2):
        await shop.http.post(f"{local(result['checkout_url'])}/pay", data={"csrf": token})
    assert await shop.stock(SERUM) == stock - 3
    assert await shop.count(FulfilmentJob) == 1


async def test_an_unpaid_simulated_checkout_expires_like_stripe_s(shop: Shop) -> None:
    result = await shop.buy(SERUM)
    async with shop.services.db.session() as session:
        await session.execute(update(SimulatedSession).values(expires_at=utcnow() - timedelta(minutes=1)))
        await session.commit()
    await Commerce(shop.services).housekeeping()  # what the worker does on each pass

    order = await shop.order(result["order"]["order_id"])
    assert order.status == "expired"
    page, _ = await open_page(shop, result["checkout_url"])
    assert "expired" in page and "Pay (simulated)</button>" not in page
    again = await shop.call("checkout")
    assert again["order"]["order_id"] != order.id


async def test_a_forged_simulated_event_is_refused(shop: Shop) -> None:
    result = await shop.buy(SERUM)
    commerce = Commerce(shop.services)
    gateway = commerce.gateway()
    assert isinstance(gateway, SimulatedGateway)
    session_id = result["checkout_url"].rsplit("/", 1)[1]
    payload, _ = gateway.signed_event(
        "checkout.session.completed",
        {
            "id": session_id,
            "status": "complete",
            "payment_status": "paid",
            "client_reference_id": result["order"]["order_id"],
        },
        "evt_forged",
    )
    response = await shop.http.post(
        "/stripe/webhook", content=payload, headers={"Stripe-Signature": sign_payload(payload, "whsec_guess")}
    )
    assert response.status_code == 400
    assert (await shop.order(result["order"]["order_id"])).status == "pending"


async def test_health_says_payments_are_simulated(shop: Shop) -> None:
    health = (await shop.http.get("/healthz")).json()
    assert health["integrations"]["payments"] == "simulated checkout (no real payments)"
    assert health["integrations"]["fulfilment"] == "local queue"


async def test_a_payment_writes_its_columns_typed_as_the_orm_reads_them(shop: Shop) -> None:
    """The payment's UPDATE of the order is built once per set of changed columns and then reused with new
    parameters (`ledger._order_write`): each value still goes through its column's type, so dates come
    back as dates, the address as a dict and the lock as a number."""
    result = await shop.buy(SERUM, 1)
    order_id = result["order"]["order_id"]
    pending = await shop.order(order_id)
    assert (await press(shop, result["checkout_url"], "pay")).status_code == 303
    order = await shop.order(order_id)
    assert order.status == "paid"
    assert isinstance(order.paid_at, type(pending.created_at)) and isinstance(
        order.updated_at, type(order.paid_at)
    )
    # paid_at is the event's time, whole seconds as the provider sends it
    assert pending.created_at - timedelta(seconds=1) <= order.paid_at <= order.updated_at
    assert isinstance(order.shipping, dict) and order.shipping["name"] == "Simulated shopper"
    assert order.lock_version == pending.lock_version + 1
