"""Refill subscriptions end to end: the subscribe tool, the simulated payment page and clock, the webhook
events (replayed and out of order) and the orders paid invoices become."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from shine_cli.cli import app
from shine_cli.subscriptions import advance_clock
from shine_mcp.config import Settings
from shine_mcp.integrations.billing import SimulatedBilling
from shine_mcp.integrations.payments import SimulatedGateway
from shine_mcp.orders.refills import suggest_interval, usage_table
from shine_mcp.orders.service import Commerce
from shine_mcp.orders.subscriptions import invoice_order_id
from shine_mcp.store.catalog import demo_catalog_records, upsert_products
from shine_mcp.store.db import open_database
from shine_mcp.store.orders import FulfilmentJob, Order
from shine_mcp.store.subscriptions import Subscription, get_subscription
from shine_mcp.store.tables import Product
from tests.checkout.conftest import BASE_URL, SERUM, Shop, in_own_task, open_shop, shop_settings
from tests.fakes.stripe_api import FakeStripe

ANA, BEN = "usr_ana_subscriber", "usr_ben_other"


def session_of(checkout_url: str) -> str:
    return checkout_url.rsplit("/", 1)[1]


async def pay_simulated(shop: Shop, checkout_url: str) -> None:
    gateway = Commerce(shop.services).gateway()
    assert isinstance(gateway, SimulatedGateway)
    assert (await gateway.pay(session_of(checkout_url))).paid


def simulated_billing(shop: Shop) -> SimulatedBilling:
    billing = Commerce(shop.services).billing()
    assert isinstance(billing, SimulatedBilling)
    return billing


async def advance(shop: Shop, days: float) -> int:
    """What `shine subscriptions advance --days N` runs."""
    return await advance_clock(Commerce(shop.services), days)


async def orders_of(shop: Shop, sub_id: str) -> list[Order]:
    async with shop.services.db.session() as session:
        found = await session.execute(select(Order).where(col(Order.cart_id) == sub_id))
        return list(found.scalars().all())


async def mine(shop: Shop, user: str = ANA) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await shop.call("list_subscriptions", user=user))["subscriptions"]
    return listed


# --- simulated mode, through the tools -------------------------------------------------------------------
async def test_subscribing_asks_first_then_the_first_paid_delivery_becomes_an_order(shop: Shop) -> None:
    said = await shop.refused("subscribe", {"product_id": SERUM}, user=ANA)
    assert "every 7 weeks" in said and "$22.00" in said  # a 30 ml serum twice a day
    assert await shop.count(Subscription) == 0

    started = await shop.call("subscribe", {"product_id": SERUM, "confirm": True}, user=ANA)
    sub = started["subscription"]
    assert sub["status"] == "incomplete" and sub["interval_weeks"] == 7
    assert "0.25-0.3 ml" in started["interval_basis"]
    again = await shop.call("subscribe", {"product_id": SERUM, "confirm": True}, user=ANA)
    assert again["reused"] and again["checkout_url"] == started["checkout_url"]  # a double yes: one
    page = await shop.http.get(started["checkout_url"].removeprefix(BASE_URL))
    assert page.status_code == 200 and "$22.00" in page.text and "Simulated" in page.text

    await pay_simulated(shop, started["checkout_url"])

    [listed] = await mine(shop)
    assert listed["status"] == "active" and listed["next_delivery"] is not None
    [order] = await orders_of(shop, sub["subscription_id"])
    assert order.status == "paid" and order.user_id == ANA and order.total_minor == 2200
    assert await shop.count(FulfilmentJob, col(FulfilmentJob.order_id) == order.id) == 1


async def test_each_period_the_clock_passes_is_one_more_order(shop: Shop) -> None:
    started = await shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": 4, "confirm": True}, user=ANA
    )
    sub_id = started["subscription"]["subscription_id"]
    await pay_simulated(shop, started["checkout_url"])
    assert await advance(shop, 10) == 0  # not due yet
    assert len(await orders_of(shop, sub_id)) == 1
    assert await advance(shop, 20) == 1  # day 30: the second period started at day 28
    assert len(await orders_of(shop, sub_id)) == 2
    assert await advance(shop, 56) == 2  # two more periods
    orders = await orders_of(shop, sub_id)
    assert len(orders) == 4 and all(o.status == "paid" for o in orders)
    assert await shop.count(FulfilmentJob, col(FulfilmentJob.user_id) == ANA) == 4


async def test_skipping_the_next_delivery_charges_and_sends_nothing_for_that_period(shop: Shop) -> None:
    started = await shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": 4, "confirm": True}, user=ANA
    )
    sub_id = started["subscription"]["subscription_id"]
    await pay_simulated(shop, started["checkout_url"])
    [before] = await mine(shop)
    skipped = await shop.call(
        "update_subscription", {"subscription_id": sub_id, "skip_next_delivery": True}, user=ANA
    )
    assert skipped["status"] == "active" and skipped["next_delivery"] > before["next_delivery"]
    assert await advance(shop, 29) == 0  # the skipped period
    assert len(await orders_of(shop, sub_id)) == 1
    assert await advance(shop, 28) == 1  # and the one after comes as usual
    assert len(await orders_of(shop, sub_id)) == 2


async def test_a_paused_subscription_bills_nothing_until_resumed(shop: Shop) -> None:
    started = await shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": 2, "confirm": True}, user=ANA
    )
    sub_id = started["subscription"]["subscription_id"]
    await pay_simulated(shop, started["checkout_url"])
    paused = await shop.call("pause_subscription", {"subscription_id": sub_id}, user=ANA)
    assert paused["status"] == "paused" and paused["next_delivery"] is None
    assert await advance(shop, 60) == 0
    resumed = await shop.call("pause_subscription", {"subscription_id": sub_id, "resume": True}, user=ANA)
    assert resumed["status"] == "active"
    assert await advance(shop, 14) == 1
    assert len(await orders_of(shop, sub_id)) == 2


async def test_cancelling_asks_first_and_ends_at_the_period_end(shop: Shop) -> None:
    started = await shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": 4, "confirm": True}, user=ANA
    )
    sub_id = started["subscription"]["subscription_id"]
    await pay_simulated(shop, started["checkout_url"])
    said = await shop.refused("cancel_subscription", {"subscription_id": sub_id}, user=ANA)
    assert "Nothing was changed yet" in said and "end of the period already paid for" in said
    assert (await mine(shop))[0]["cancels_at_period_end"] is False

    cancelled = await shop.call("cancel_subscription", {"subscription_id": sub_id, "confirm": True}, user=ANA)
    assert cancelled["status"] == "active" and cancelled["cancels_at_period_end"]
    assert cancelled["next_delivery"] is None
    assert await advance(shop, 40) == 0
    [ended] = await mine(shop)
    assert ended["status"] == "canceled"
    assert len(await orders_of(shop, sub_id)) == 1
    refused = await shop.refused("pause_subscription", {"subscription_id": sub_id}, user=ANA)
    assert "has ended" in refused


async def test_a_failed_payment_is_past_due_and_the_retry_recovers_it(shop: Shop) -> None:
    started = await shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": 4, "confirm": True}, user=ANA
    )
    sub_id = started["subscription"]["subscription_id"]
    await pay_simulated(shop, started["checkout_url"])
    billing = simulated_billing(shop)
    sub = await get_subscription(shop.services.db, sub_id)
    assert sub is not None and sub.provider_subscription_id
    await billing.fail_next_charge(sub.provider_subscription_id)
    assert await advance(shop, 29) == 1
    [late] = await mine(shop)
    assert late["status"] == "past_due" and "did not go through" in late["notice"]
    assert len(await orders_of(shop, sub_id)) == 1  # nothing sent for an unpaid period

    assert await advance(shop, 1) == 1  # the retry is paid
    [recovered] = await mine(shop)
    assert recovered["status"] == "active"
    assert len(await orders_of(shop, sub_id)) == 2


async def test_changing_the_interval_and_quantity_changes_the_next_refill(shop: Shop) -> None:
    started = await shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": 4, "confirm": True}, user=ANA
    )
    sub_id = started["subscription"]["subscription_id"]
    await pay_simulated(shop, started["checkout_url"])
    changed = await shop.call(
        "update_subscription", {"subscription_id": sub_id, "interval_weeks": 8, "quantity": 2}, user=ANA
    )
    assert changed["interval_weeks"] == 8 and changed["items"][0]["quantity"] == 2
    assert changed["amount_per_delivery"]["amount_minor"] == 4400
    assert await advance(shop, 29) == 1  # the period already running ends as it was
    assert await advance(shop, 50) == 0  # the next is 8 weeks later
    assert await advance(shop, 7) == 1
    totals = sorted(o.total_minor for o in await orders_of(shop, sub_id))
    assert totals == [2200, 4400, 4400]


async def test_another_person_cannot_see_or_change_a_subscription(shop: Shop) -> None:
    started = await shop.call("subscribe", {"product_id": SERUM, "confirm": True}, user=ANA)
    sub_id = started["subscription"]["subscription_id"]
    await pay_simulated(shop, started["checkout_url"])
    assert await mine(shop, BEN) == []
    for tool, args in (
        ("update_subscription", {"subscription_id": sub_id, "quantity": 3}),
        ("pause_subscription", {"subscription_id": sub_id}),
        ("cancel_subscription", {"subscription_id": sub_id, "confirm": True}),
    ):
        refused = await shop.refused(tool, args, user=BEN)
        assert f"you have no subscription '{sub_id}'" in refused
    [still] = await mine(shop)
    assert still["status"] == "active" and still["items"][0]["quantity"] == 1


async def test_a_guest_is_asked_to_sign_in_before_subscribing(shop: Shop) -> None:
    refused = await shop.refused("subscribe", {"product_id": SERUM, "confirm": True}, user="gst_visitor01")
    assert "sign in" in refused


async def test_erasing_your_data_stops_your_refills_and_unlinks_them(shop: Shop) -> None:
    started = await shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": 4, "confirm": True}, user=ANA
    )
    sub_id = started["subscription"]["subscription_id"]
    await pay_simulated(shop, started["checkout_url"])
    exported = await shop.call("export_my_data", user=ANA)
    assert [s["id"] for s in exported["commerce"]["subscriptions"]] == [sub_id]

    erased = await shop.call("delete_my_data", {"confirm": True}, user=ANA)
    assert erased["deleted"]["subscriptions_ended"] == 1
    assert await mine(shop) == []
    sub = await get_subscription(shop.services.db, sub_id)
    assert sub is not None and sub.status == "canceled" and sub.user_id != ANA
    assert sub.email is None and sub.shipping is None
    assert sub.provider_subscription_id is not None
    provider = await simulated_billing(shop).retrieve_subscription(sub.provider_subscription_id)
    assert provider["status"] == "canceled"
    assert await advance(shop, 60) == 0  # nothing more is charged or sent
    assert len(await orders_of(shop, sub_id)) == 1


# --- the webhook events: replays and any order give the same state --------------------------------------
async def _events_of_a_life(shop: Shop, user: str = ANA) -> tuple[str, list[tuple[bytes, str]]]:
    """Subscribe, pay, renew, fail, recover and cancel on the simulated gateway while recording the signed
    events instead of delivering them; the subscription row is left as it was created (incomplete)."""
    recorded: list[tuple[bytes, str]] = []

    async def record(payload: bytes, signature: str) -> None:
        recorded.append((payload, signature))

    commerce = Commerce(shop.services)
    gateway = commerce.gateway()
    billing = commerce.billing()
    assert isinstance(gateway, SimulatedGateway) and isinstance(billing, SimulatedBilling)
    gateway.deliver = billing.deliver = record
    started = await shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": 2, "confirm": True}, user=user
    )
    session_id = session_of(started["checkout_url"])
    await gateway.pay(session_id)
    provider = "sub_sim_" + hashlib.sha256(session_id.encode()).hexdigest()[:20]
    await billing.advance(timedelta(days=15))  # renewed
    await billing.fail_next_charge(provider)
    await billing.advance(timedelta(days=14))  # the next renewal fails
    await billing.advance(timedelta(days=1))  # and its retry is paid
    data = await billing.retrieve_subscription(provider)
    data["cancel_at_period_end"] = True
    await billing.store.save(data)
    await billing.advance(timedelta(days=15))  # ends
    return started["subscription"]["subscription_id"], recorded


async def _state(shop: Shop, sub_id: str, user: str = ANA) -> tuple[Any, ...]:
    sub = await get_subscription(shop.services.db, sub_id)
    assert sub is not None
    orders = sorted((o.id, o.status, o.total_minor) for o in await orders_of(shop, sub_id))
    jobs = await shop.count(FulfilmentJob, col(FulfilmentJob.user_id) == user)
    return (sub.status, sub.current_period_end, sub.last_paid_at, sub.ended_at, tuple(orders), jobs)


def _expected(events: list[tuple[bytes, str]]) -> tuple[Any, ...]:
    """What the events say, worked out here without Shine's code: the state any delivery order must give."""
    parsed = [json.loads(payload) for payload, _ in events]
    paid = [e["data"]["object"] for e in parsed if e["type"] == "invoice.paid"]
    ends = [line["period"]["end"] for invoice in paid for line in invoice["lines"]["data"]]
    ends += [
        item["current_period_end"]
        for e in parsed
        if e["type"].startswith("customer.subscription.")
        for item in e["data"]["object"]["items"]["data"]
    ]
    [deleted] = [e["created"] for e in parsed if e["type"] == "customer.subscription.deleted"]
    orders = sorted((invoice_order_id(i["id"]), "paid", i["amount_paid"]) for i in paid)
    stamp = lambda epoch: datetime.fromtimestamp(epoch, UTC)  # noqa: E731
    last_paid = max(i["status_transitions"]["paid_at"] for i in paid)
    return ("canceled", stamp(max(ends)), stamp(last_paid), stamp(deleted), tuple(orders), len(paid))


async def test_replayed_and_reordered_events_give_the_same_subscription_and_orders(shop: Shop) -> None:
    sub_id, events = await _events_of_a_life(shop)
    types = [json.loads(p)["type"] for p, _ in events]
    assert types.count("invoice.paid") == 3 and "invoice.payment_failed" in types
    assert "customer.subscription.deleted" in types
    webhooks = Commerce(shop.services).webhooks

    for payload, signature in events:
        await webhooks.handle(payload, signature)
    in_order = await _state(shop, sub_id)
    assert in_order == _expected(events)

    shuffled = list(itertools.chain(events, events))
    random.Random(21).shuffle(shuffled)
    for payload, signature in shuffled:  # every event again, in another order: nothing changes
        result = await webhooks.handle(payload, signature)
        assert result.outcome == "duplicate"
    assert await _state(shop, sub_id) == in_order


async def test_events_in_reverse_order_give_the_state_they_describe(shop: Shop) -> None:
    sub_id, events = await _events_of_a_life(shop)
    webhooks = Commerce(shop.services).webhooks
    for payload, signature in reversed(events):
        await webhooks.handle(payload, signature)
    assert await _state(shop, sub_id) == _expected(events)
    sub = await get_subscription(shop.services.db, sub_id)
    assert sub is not None and sub.last_failed_at is not None and sub.last_paid_at is not None
    assert sub.last_paid_at > sub.last_failed_at  # the retry was paid after the failure


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_events_delivered_all_at_once_give_the_state_they_describe(
    backend: str, tmp_path: Path, sim_settings: Settings, request: pytest.FixtureRequest
) -> None:
    config = sim_settings
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
        config = shop_settings(tmp_path / "pg").model_copy(update={"database_url": url})
        db = await open_database(config)
        await upsert_products(db, demo_catalog_records()[1], source="demo")
        await db.close()
    user = f"usr_{uuid.uuid4().hex[:12]}"
    # Two Shine processes on one database, each handed every event (as Stripe retries and parallel
    # deliveries do), all at once.
    async with in_own_task(open_shop(config)) as one, in_own_task(open_shop(config)) as two:
        sub_id, events = await _events_of_a_life(one, user)
        handlers = [Commerce(one.services).webhooks, Commerce(two.services).webhooks]
        await asyncio.gather(*(h.handle(p, sig) for h in handlers for p, sig in events))
        assert await _state(one, sub_id, user) == _expected(events)


# --- the real stripe SDK against the Stripe fake -----------------------------------------------------------
async def test_stripe_subscription_checkout_then_invoices_become_orders(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    started = await stripe_shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": 6, "confirm": True}, user=ANA
    )
    sub_id = started["subscription"]["subscription_id"]
    [created] = fake_stripe.posts("/v1/checkout/sessions")
    assert created.params["mode"] == "subscription"
    price = created.params["line_items"][0]["price_data"]
    assert price["recurring"] == {"interval": "week", "interval_count": "6"}
    assert created.params["subscription_data"]["metadata"] == {"subscription_id": sub_id}

    session_id = started["checkout_url"].rsplit("/", 1)[1]
    for event in fake_stripe.complete_subscription(session_id):  # completed, created, invoice.paid
        assert (await stripe_shop.webhook(event)).status_code == 200
    [listed] = await mine(stripe_shop)
    assert listed["status"] == "active" and listed["interval_weeks"] == 6
    assert len(await orders_of(stripe_shop, sub_id)) == 1

    provider = fake_stripe.sessions[session_id]["subscription"]
    renewal = fake_stripe.renew(provider)
    for _ in range(2):  # delivered twice: one order
        assert (await stripe_shop.webhook(renewal)).status_code == 200
    assert len(await orders_of(stripe_shop, sub_id)) == 2

    await stripe_shop.call("update_subscription", {"subscription_id": sub_id, "quantity": 2}, user=ANA)
    assert fake_stripe.subscriptions[provider]["items"]["data"][0]["quantity"] == 2
    await stripe_shop.call("pause_subscription", {"subscription_id": sub_id}, user=ANA)
    assert fake_stripe.subscriptions[provider]["pause_collection"] == {"behavior": "void", "resumes_at": None}
    await stripe_shop.call("pause_subscription", {"subscription_id": sub_id, "resume": True}, user=ANA)
    assert fake_stripe.subscriptions[provider]["pause_collection"] is None
    cancelled = await stripe_shop.call(
        "cancel_subscription", {"subscription_id": sub_id, "confirm": True}, user=ANA
    )
    assert cancelled["cancels_at_period_end"] and fake_stripe.subscriptions[provider]["cancel_at_period_end"]
    for event in fake_stripe.events:  # every update Stripe reported, once more: nothing changes
        if event["type"].startswith("customer.subscription."):
            await stripe_shop.webhook(event)
    [still] = await mine(stripe_shop)
    assert still["cancels_at_period_end"] and still["items"][0]["quantity"] == 2


async def test_a_stripe_payment_failure_then_recovery(stripe_shop: Shop, fake_stripe: FakeStripe) -> None:
    started = await stripe_shop.call("subscribe", {"product_id": SERUM, "confirm": True}, user=ANA)
    sub_id = started["subscription"]["subscription_id"]
    session_id = started["checkout_url"].rsplit("/", 1)[1]
    for event in fake_stripe.complete_subscription(session_id):
        await stripe_shop.webhook(event)
    provider = fake_stripe.sessions[session_id]["subscription"]
    failed = fake_stripe.renew(provider, fail=True)
    assert (await stripe_shop.webhook(failed)).status_code == 200
    assert (await mine(stripe_shop))[0]["status"] == "past_due"
    paid = fake_stripe.retry(provider, failed["data"]["object"]["id"])
    assert (await stripe_shop.webhook(paid)).status_code == 200
    assert (await mine(stripe_shop))[0]["status"] == "active"
    assert len(await orders_of(stripe_shop, sub_id)) == 2


async def test_an_invoice_event_not_signed_by_stripe_changes_nothing(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    started = await stripe_shop.call("subscribe", {"product_id": SERUM, "confirm": True}, user=ANA)
    for event in fake_stripe.complete_subscription(session_of(started["checkout_url"])):
        assert (await stripe_shop.webhook(event, secret="whsec_not_stripes")).status_code == 400
    assert (await mine(stripe_shop))[0]["status"] == "incomplete"
    assert await stripe_shop.count(Order) == 0


# --- the merchant's clock: `shine subscriptions advance` -----------------------------------------------------
def test_the_cli_advances_the_clock_and_each_due_refill_becomes_an_order(sim_settings: Settings) -> None:
    async def arrange() -> str:
        async with in_own_task(open_shop(sim_settings)) as shop:
            started = await shop.call(
                "subscribe", {"product_id": SERUM, "interval_weeks": 4, "confirm": True}, user=ANA
            )
            await pay_simulated(shop, started["checkout_url"])
            return str(started["subscription"]["subscription_id"])

    async def orders(sub_id: str) -> list[Order]:
        async with in_own_task(open_shop(sim_settings)) as shop:
            return await orders_of(shop, sub_id)

    sub_id = asyncio.run(arrange())
    env = {
        "SHINE_DATA_DIR": str(sim_settings.data_dir),
        "DATABASE_URL": None,
        "STRIPE_SECRET_KEY": None,
        "SHINE_SECRET_KEY": None,
        "COLUMNS": "200",
    }
    advanced = CliRunner().invoke(app, ["subscriptions", "advance", "--days", "30"], env=env)
    assert advanced.exit_code == 0, advanced.output
    assert "1 invoice(s) sent" in advanced.output
    paid = asyncio.run(orders(sub_id))
    assert len(paid) == 2 and all(o.status == "paid" for o in paid)
    assert all(o.shipping and o.shipping["address"]["line1"] == "1 Simulation Street" for o in paid)
    listing = CliRunner().invoke(app, ["subscriptions", "list"], env=env)
    assert sub_id in listing.output and "active" in listing.output


# --- the interval, from size and daily use ---------------------------------------------------------------------
def _product(category: str, size: str | None) -> Product:
    return Product(
        id="prd_000000000000", source="test", handle="x", brand="B", name="N", category=category,
        price_minor=1000, currency="USD", size=size,
    )  # fmt: skip


def test_a_30_ml_serum_used_twice_a_day_is_refilled_every_7_weeks() -> None:
    suggestion = suggest_interval(_product("serum", "30 ml"))
    # 30 ml / (0.25-0.3 ml × 2 a day) = 50-60 days; whole weeks rounded down so it never runs out.
    assert (suggestion.weeks, suggestion.shortest_weeks, suggestion.longest_weeks) == (7, 7, 8)
    assert "0.25-0.3 ml per use" in suggestion.basis and "50-60 days" in suggestion.basis
    assert "European Pharmacopoeia" in suggestion.basis


def test_sunscreen_and_pads_and_ounces_follow_their_own_use() -> None:
    assert suggest_interval(_product("sunscreen", "50 ml")).weeks == 6  # 40-50 days at 1-1.25 ml a day
    assert suggest_interval(_product("toner", "60 pads")).weeks == 4  # 60 pads, 2 a day: 30 days
    assert suggest_interval(_product("serum", "1 fl oz")).weeks == 7  # 29.6 ml
    assert suggest_interval(_product("moisturiser", "48 g")).weeks == 7  # 48-60 days, 54 in the middle


def test_an_unknown_size_gets_the_default_and_says_why() -> None:
    suggestion = suggest_interval(_product("serum", None))
    assert suggestion.weeks == 8 and "does not know its size" in suggestion.basis
    assert "how much a use takes" in suggest_interval(_product("tools", "30 ml")).basis


def test_every_usage_estimate_names_a_source_and_every_demo_product_gets_an_interval() -> None:
    table = usage_table()
    for category, usage in table["categories"].items():
        assert usage["source"] in table["sources"], category
        low, high = usage["ml_per_use"]
        assert 0 < low <= high and usage["uses_per_day"] > 0 and usage["basis"]
    demo = json.loads(
        resources.files("shine_mcp.store").joinpath("data/demo_catalog.json").read_text(encoding="utf-8")
    )
    for record in demo["products"]:
        suggestion = suggest_interval(_product(record["category"], record.get("size")))
        assert 1 <= suggestion.shortest_weeks <= suggestion.weeks <= suggestion.longest_weeks <= 26


async def test_erasing_your_data_cancels_the_stripe_subscription_first(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    started = await stripe_shop.call("subscribe", {"product_id": SERUM, "confirm": True}, user=ANA)
    session_id = session_of(started["checkout_url"])
    for event in fake_stripe.complete_subscription(session_id):
        await stripe_shop.webhook(event)
    provider = fake_stripe.sessions[session_id]["subscription"]
    fake_stripe.fail_next(f"/v1/subscriptions/{provider}", 503)
    refused = await stripe_shop.refused("delete_my_data", {"confirm": True}, user=ANA)
    assert "could not be stopped" in refused and "nothing was deleted" in refused
    assert (await mine(stripe_shop))[0]["status"] == "active"  # still theirs: nothing was erased

    erased = await stripe_shop.call("delete_my_data", {"confirm": True}, user=ANA)
    assert erased["deleted"]["subscriptions_ended"] == 1
    assert fake_stripe.subscriptions[provider]["status"] == "canceled"
    assert [r.method for r in fake_stripe.requests if r.path == f"/v1/subscriptions/{provider}"][
        -1
    ] == "DELETE"
