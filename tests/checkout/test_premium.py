"""Premium membership end to end (simulated and the real stripe SDK against the Stripe fake): joining after a
yes, the premium role and member prices while the membership runs and not after, plan switches with Stripe's
proration and at the period's end, product swaps in refills with proration, the payment-methods page,
refunds of orders made from invoices, and membership events replayed and out of order."""

from __future__ import annotations

import itertools
import random
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from shine_mcp.config import Settings
from shine_mcp.integrations.billing import SimulatedBilling
from shine_mcp.integrations.payments import SimulatedGateway
from shine_mcp.money import format_money
from shine_mcp.orders.service import Commerce
from shine_mcp.store.memberships import Membership, memberships_of
from shine_mcp.store.orders import Order
from shine_mcp.store.subscriptions import get_subscription
from tests.checkout.conftest import BASE_URL, CLEANSER, FOAMING, SERUM, Shop, in_own_task, open_shop
from tests.fakes.stripe_api import FakeStripe

ANA, BEN = "usr_ana_member", "usr_ben_not_member"
DAY = 24 * 3600


def session_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def pay_simulated(shop: Shop, url: str) -> None:
    gateway = Commerce(shop.services).gateway()
    assert isinstance(gateway, SimulatedGateway)
    assert (await gateway.pay(session_of(url))).paid


def billing_of(shop: Shop) -> SimulatedBilling:
    billing = Commerce(shop.services).billing()
    assert isinstance(billing, SimulatedBilling)
    return billing


async def advance(shop: Shop, days: float) -> None:
    from datetime import timedelta

    await billing_of(shop).advance(timedelta(days=days))


async def premium(shop: Shop, user: str = ANA) -> dict[str, Any]:
    return await shop.call("premium_membership", user=user)


async def checkout_total(shop: Shop, user: str) -> int:
    bought = await shop.buy(SERUM, user=user)  # $22.00
    return int(bought["order"]["total"]["amount_minor"])


def half_up(amount: int, left: int, whole: int) -> int:
    """Stripe's proration share, worked out here independently of Shine's code."""
    return (2 * amount * left + whole) // (2 * whole)


async def deliver_new(shop: Shop, fake: FakeStripe, seen: int) -> int:
    """Deliver every event the fake emitted since `seen` (what Stripe would send); returns the new count."""
    for event in fake.events[seen:]:
        assert (await shop.webhook(event)).status_code == 200
    return len(fake.events)


# --- simulated mode -----------------------------------------------------------------------------------------
async def test_joining_asks_first_and_premium_starts_when_the_first_payment_is_made(shop: Shop) -> None:
    said = await shop.refused("join_premium", {"plan": "monthly"}, user=ANA)
    assert "$7.99 a month" in said and "10 % off every order" in said
    assert await shop.count(Membership) == 0

    joined = await shop.call("join_premium", {"plan": "monthly", "confirm": True}, user=ANA)
    assert joined["status"] == "incomplete" and joined["premium"] is False and joined["checkout_url"]
    page = await shop.http.get(joined["checkout_url"].removeprefix(BASE_URL))
    assert page.status_code == 200 and "$7.99" in page.text
    again = await shop.call("join_premium", {"plan": "monthly", "confirm": True}, user=ANA)
    assert again["checkout_url"] == joined["checkout_url"]  # a double yes: one membership
    assert (await shop.call("get_account", user=ANA))["roles"] == ["user"]

    await pay_simulated(shop, joined["checkout_url"])
    member = await premium(shop)
    assert member["premium"] is True and member["status"] == "active" and member["plan"] == "monthly"
    assert member["renews_on"] is not None and member["checkout_url"] is None
    assert (await shop.call("get_account", user=ANA))["roles"] == ["premium", "user"]
    refused = await shop.refused("join_premium", {"plan": "yearly", "confirm": True}, user=ANA)
    assert "already a premium member" in refused


async def test_a_non_member_is_told_in_plain_words_what_premium_would_give(shop: Shop) -> None:
    answer = await premium(shop, BEN)
    assert answer["premium"] is False and answer["status"] == "none"
    assert "$7.99 a month or $79.00 a year" in answer["notice"]
    assert "10 % off every order at checkout" in answer["notice"]
    assert [p["price"]["amount_minor"] for p in answer["plans"]] == [799, 7900]
    for jargon in ("Stripe", "subscription_id", "webhook", "role"):
        assert jargon not in answer["notice"]


async def test_members_pay_member_prices_and_everyone_else_the_catalog_price(shop: Shop) -> None:
    joined = await shop.call("join_premium", {"plan": "monthly", "confirm": True}, user=ANA)
    assert await checkout_total(shop, ANA) == 2200  # not paid yet: not a member yet
    await pay_simulated(shop, joined["checkout_url"])
    await shop.call("remove_from_cart", {"product_id": SERUM}, user=ANA)
    assert await checkout_total(shop, ANA) == 1980  # 10 % off $22.00
    assert await checkout_total(shop, BEN) == 2200


async def test_premium_ends_at_the_end_of_the_paid_period_after_cancelling(shop: Shop) -> None:
    joined = await shop.call("join_premium", {"plan": "monthly", "confirm": True}, user=ANA)
    await pay_simulated(shop, joined["checkout_url"])
    said = await shop.refused("cancel_premium", user=ANA)
    assert "Nothing was changed yet" in said and "at the end of the period already paid for" in said
    assert (await premium(shop))["ends_on"] is None

    cancelled = await shop.call("cancel_premium", {"confirm": True}, user=ANA)
    assert cancelled["premium"] is True and cancelled["ends_on"] and cancelled["renews_on"] is None
    await advance(shop, 20)
    assert (await premium(shop))["premium"] is True  # still inside the paid month
    await advance(shop, 12)
    ended = await premium(shop)
    assert ended["premium"] is False and ended["status"] == "canceled"
    assert "has ended" in ended["notice"]
    assert (await shop.call("get_account", user=ANA))["roles"] == ["user"]
    assert await checkout_total(shop, ANA) == 2200  # member prices are gone with it


async def test_simulated_upgrade_charges_the_year_less_the_unused_month_as_stripe_computes(
    shop: Shop,
) -> None:
    joined = await shop.call("join_premium", {"plan": "monthly", "confirm": True}, user=ANA)
    await pay_simulated(shop, joined["checkout_url"])
    await advance(shop, 10)
    [membership] = await memberships_of(shop.services.db, ANA)
    assert membership.provider_subscription_id
    billing = billing_of(shop)
    item = (await billing.retrieve_subscription(membership.provider_subscription_id))["items"]["data"][0]
    start, end = int(item["current_period_start"]), int(item["current_period_end"])

    def expected() -> int:
        at = max(start, int(billing.clock().replace(minute=0, second=0, microsecond=0).timestamp()))
        return 7900 - half_up(799, end - at, end - start)

    due = expected()
    said = await shop.refused("change_premium_plan", {"plan": "yearly"}, user=ANA)
    assert f"so {format_money(due, 'USD')} is charged now" in said
    switched = await shop.call("change_premium_plan", {"plan": "yearly", "confirm": True}, user=ANA)
    assert switched["charged_now"]["amount_minor"] in {due, expected()}  # the same hour, or the next one
    member = switched["membership"]
    assert member["plan"] == "yearly" and member["premium"] is True
    renews = datetime.fromisoformat(member["renews_on"])
    assert 364 <= (renews - billing.clock()).days <= 366


# --- the real stripe SDK against the Stripe fake -------------------------------------------------------------
async def _stripe_member(shop: Shop, fake: FakeStripe, plan: str = "monthly") -> str:
    """Join and pay on Stripe; returns the Stripe subscription id."""
    joined = await shop.call("join_premium", {"plan": plan, "confirm": True}, user=ANA)
    session_id = session_of(joined["checkout_url"])
    for event in fake.complete_subscription(session_id):
        assert (await shop.webhook(event)).status_code == 200
    return str(fake.sessions[session_id]["subscription"])


async def test_stripe_premium_is_granted_when_paid_and_revoked_at_the_period_end(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    provider = await _stripe_member(stripe_shop, fake_stripe)
    created = fake_stripe.posts("/v1/checkout/sessions")[-1].params
    assert created["mode"] == "subscription"
    price = created["line_items"][0]["price_data"]
    assert (
        price["recurring"] == {"interval": "month", "interval_count": "1"} and price["unit_amount"] == "799"
    )
    [membership] = await memberships_of(stripe_shop.services.db, ANA)
    assert created["subscription_data"]["metadata"] == {"membership_id": membership.id}
    assert (await premium(stripe_shop))["premium"] is True
    assert await stripe_shop.count(Order) == 0  # a membership invoice delivers nothing

    await stripe_shop.call("cancel_premium", {"confirm": True}, user=ANA)
    assert fake_stripe.subscriptions[provider]["cancel_at_period_end"] is True
    assert (await premium(stripe_shop))["premium"] is True
    deleted = fake_stripe.renew(provider)  # the period ends: Stripe ends the subscription
    assert deleted["type"] == "customer.subscription.deleted"
    assert (await stripe_shop.webhook(deleted)).status_code == 200
    ended = await premium(stripe_shop)
    assert ended["premium"] is False and ended["status"] == "canceled"
    assert (await stripe_shop.call("get_account", user=ANA))["roles"] == ["user"]


async def test_stripe_upgrade_to_yearly_charges_stripes_proration(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    provider = await _stripe_member(stripe_shop, fake_stripe)
    item = fake_stripe.subscriptions[provider]["items"]["data"][0]
    for name in ("current_period_start", "current_period_end"):  # ten days into the month
        item[name] -= 10 * DAY
    start, end = item["current_period_start"], item["current_period_end"]

    said = await stripe_shop.refused("change_premium_plan", {"plan": "yearly"}, user=ANA)
    preview = fake_stripe.posts("/v1/invoices/create_preview")[-1].params
    at = int(preview["subscription_details"]["proration_date"])
    assert preview["subscription_details"]["proration_behavior"] == "always_invoice"
    due = 7900 - half_up(799, end - at, end - start)
    assert f"so {format_money(due, 'USD')} is charged now" in said

    seen = len(fake_stripe.events)
    switched = await stripe_shop.call("change_premium_plan", {"plan": "yearly", "confirm": True}, user=ANA)
    assert switched["charged_now"]["amount_minor"] == due
    [update] = [r for r in fake_stripe.posts(f"/v1/subscriptions/{provider}") if "items" in r.params]
    assert (
        update.params["proration_behavior"] == "always_invoice" and int(update.params["proration_date"]) == at
    )
    [invoice] = [i for i in fake_stripe.invoices.values() if i["billing_reason"] == "subscription_update"]
    assert invoice["amount_paid"] == due
    assert fake_stripe.subscriptions[provider]["items"]["data"][0]["price"]["recurring"]["interval"] == "year"
    await deliver_new(stripe_shop, fake_stripe, seen)
    member = await premium(stripe_shop)
    assert member["plan"] == "yearly" and member["premium"] is True and member["switching_to"] is None


async def test_stripe_downgrade_to_monthly_starts_when_the_paid_year_ends(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    provider = await _stripe_member(stripe_shop, fake_stripe, "yearly")
    said = await stripe_shop.refused("change_premium_plan", {"plan": "monthly"}, user=ANA)
    assert "nothing is charged now" in said
    seen = len(fake_stripe.events)
    switched = await stripe_shop.call("change_premium_plan", {"plan": "monthly", "confirm": True}, user=ANA)
    assert switched["charged_now"]["amount_minor"] == 0
    assert switched["membership"]["plan"] == "yearly" and switched["membership"]["switching_to"] == "monthly"
    [schedule] = fake_stripe.schedules.values()
    assert schedule["subscription"] == provider and len(schedule["phases"]) == 2
    assert schedule["phases"][1]["items"][0]["price_object"]["recurring"]["interval"] == "month"
    assert fake_stripe.subscriptions[provider]["items"]["data"][0]["price"]["recurring"]["interval"] == "year"
    assert not [i for i in fake_stripe.invoices.values() if i["billing_reason"] == "subscription_update"]

    renewal = fake_stripe.renew(provider)  # the year is over: the schedule's monthly phase starts
    assert renewal["data"]["object"]["amount_paid"] == 799
    await deliver_new(stripe_shop, fake_stripe, seen)
    member = await premium(stripe_shop)
    assert member["plan"] == "monthly" and member["switching_to"] is None and member["premium"] is True


async def test_stripe_membership_payment_failure_then_recovery(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    provider = await _stripe_member(stripe_shop, fake_stripe)
    failed = fake_stripe.renew(provider, fail=True)
    assert (await stripe_shop.webhook(failed)).status_code == 200
    late = await premium(stripe_shop)
    assert late["status"] == "past_due" and late["premium"] is True  # Stripe retries the card meanwhile
    assert "did not go through" in late["notice"]
    paid = fake_stripe.retry(provider, failed["data"]["object"]["id"])
    assert (await stripe_shop.webhook(paid)).status_code == 200
    assert (await premium(stripe_shop))["status"] == "active"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_membership_events_replayed_and_in_any_order_give_the_same_membership(
    backend: str, stripe_settings: Settings, fake_stripe: FakeStripe, request: pytest.FixtureRequest
) -> None:
    config = stripe_settings
    if backend == "postgresql":  # one database for the whole session: a person of this test's own
        config = stripe_settings.model_copy(update={"database_url": request.getfixturevalue("postgres_url")})
    user = f"usr_{uuid.uuid4().hex[:12]}"
    async with in_own_task(open_shop(config)) as stripe_shop:
        joined = await stripe_shop.call("join_premium", {"plan": "monthly", "confirm": True}, user=user)
        session_id = session_of(joined["checkout_url"])
        fake_stripe.complete_subscription(session_id)
        provider = str(fake_stripe.sessions[session_id]["subscription"])
        failed = fake_stripe.renew(provider, fail=True)
        fake_stripe.retry(provider, failed["data"]["object"]["id"])
        fake_stripe.subscriptions[provider]["cancel_at_period_end"] = True
        fake_stripe.emit("customer.subscription.updated", fake_stripe.subscriptions[provider])
        deleted = fake_stripe.renew(provider)
        events = list(fake_stripe.events)

        async def state() -> tuple[Any, ...]:
            [m] = await memberships_of(stripe_shop.services.db, user)
            return (
                m.status,
                m.plan,
                m.cancel_at_period_end,
                m.current_period_end,
                m.last_paid_at,
                m.ended_at,
            )

        for event in reversed(events):
            assert (await stripe_shop.webhook(event)).status_code == 200
        backwards = await state()
        paid = [e["data"]["object"] for e in events if e["type"] == "invoice.paid"]
        last_paid = max(i["status_transitions"]["paid_at"] for i in paid)
        stamp = lambda epoch: datetime.fromtimestamp(epoch, UTC)  # noqa: E731
        assert backwards[:3] == ("canceled", "monthly", True)
        assert backwards[4:] == (stamp(last_paid), stamp(deleted["created"]))
        shuffled = list(itertools.chain(events, events))
        random.Random(21).shuffle(shuffled)
        for event in shuffled:
            assert (await stripe_shop.webhook(event)).status_code == 200
        assert await state() == backwards
        assert (await premium(stripe_shop, user))["premium"] is False


# --- swaps, the payment-methods page, refunds of invoice orders ---------------------------------------------------
async def _stripe_refill(shop: Shop, fake: FakeStripe, product: str = CLEANSER) -> tuple[str, str]:
    started = await shop.call(
        "subscribe", {"product_id": product, "interval_weeks": 4, "confirm": True}, user=ANA
    )
    session_id = session_of(started["checkout_url"])
    for event in fake.complete_subscription(session_id):
        assert (await shop.webhook(event)).status_code == 200
    return str(started["subscription"]["subscription_id"]), str(fake.sessions[session_id]["subscription"])


async def test_stripe_swapping_the_product_charges_the_prorated_difference_and_delivers_the_new_one(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    sub_id, provider = await _stripe_refill(stripe_shop, fake_stripe, FOAMING)  # $16.99
    item = fake_stripe.subscriptions[provider]["items"]["data"][0]
    for name in ("current_period_start", "current_period_end"):  # a week into the 4 weeks
        item[name] -= 7 * DAY
    start, end = item["current_period_start"], item["current_period_end"]
    args = {"subscription_id": sub_id, "swap_to_product_id": SERUM}  # $22.00
    said = await stripe_shop.refused("update_subscription", args, user=ANA)
    at = int(
        fake_stripe.posts("/v1/invoices/create_preview")[-1].params["subscription_details"]["proration_date"]
    )
    due = half_up(2200, end - at, end - start) - half_up(1699, end - at, end - start)
    assert f"{format_money(due, 'USD')} is charged now" in said and "Naturium" in said

    seen = len(fake_stripe.events)
    swapped = await stripe_shop.call("update_subscription", {**args, "confirm": True}, user=ANA)
    assert (
        swapped["items"][0]["product_id"] == SERUM and swapped["amount_per_delivery"]["amount_minor"] == 2200
    )
    [invoice] = [i for i in fake_stripe.invoices.values() if i["billing_reason"] == "subscription_update"]
    assert invoice["amount_paid"] == due
    await deliver_new(stripe_shop, fake_stripe, seen)
    orders_before = await stripe_shop.count(Order)
    assert orders_before == 1  # the proration invoice delivers nothing
    renewal = fake_stripe.renew(provider)
    assert renewal["data"]["object"]["amount_paid"] == 2200
    assert (await stripe_shop.webhook(renewal)).status_code == 200
    newest = max(
        [await stripe_shop.order(o) for o in await _order_ids(stripe_shop)], key=lambda o: o.created_at
    )
    assert newest.total_minor == 2200


async def _order_ids(shop: Shop) -> list[str]:
    from sqlmodel import select

    async with shop.services.db.session() as session:
        return [o.id for o in (await session.execute(select(Order))).scalars().all()]


async def test_stripe_payment_methods_link_opens_the_customer_portal(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    refused = await stripe_shop.refused("manage_payment_methods", user=ANA)
    assert "no card on file yet" in refused
    await _stripe_refill(stripe_shop, fake_stripe)
    link = await stripe_shop.call("manage_payment_methods", user=ANA)
    assert link["url"].startswith("https://billing.stripe.com/p/session/") and link["simulated"] is False
    [portal] = fake_stripe.portal_sessions.values()
    customer = next(iter(fake_stripe.subscriptions.values()))["customer"]
    assert portal["customer"] == customer and portal["return_url"] == f"{BASE_URL}/"
    assert "no card on file yet" in await stripe_shop.refused("manage_payment_methods", user=BEN)


async def test_simulated_payment_methods_page_takes_a_new_card_and_the_declined_refill_is_paid(
    shop: Shop,
) -> None:
    started = await shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": 4, "confirm": True}, user=ANA
    )
    sub_id = started["subscription"]["subscription_id"]
    await pay_simulated(shop, started["checkout_url"])
    sub = await get_subscription(shop.services.db, sub_id)
    assert sub is not None and sub.provider_subscription_id
    await billing_of(shop).fail_next_charge(sub.provider_subscription_id)
    await advance(shop, 29)
    [late] = (await shop.call("list_subscriptions", user=ANA))["subscriptions"]
    assert late["status"] == "past_due"

    link = await shop.call("manage_payment_methods", user=ANA)
    assert link["simulated"] is True
    page = await shop.http.get(link["url"].removeprefix(BASE_URL))
    assert page.status_code == 200 and "SIMULATED" in page.text and "waiting for a new card" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    action = re.search(r'form method="post" action="([^"]+)"', page.text)
    assert csrf and action
    forged = await shop.http.get(link["url"].removeprefix(BASE_URL)[:-3] + "abc")
    assert forged.status_code == 404
    posted = await shop.http.post(action.group(1), data={"csrf": csrf.group(1)})
    assert posted.status_code == 303
    [recovered] = (await shop.call("list_subscriptions", user=ANA))["subscriptions"]
    assert recovered["status"] == "active"
    assert await shop.count(Order) == 2


async def test_stripe_refunding_an_order_made_from_an_invoice(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    await _stripe_refill(stripe_shop, fake_stripe)
    [order_id] = await _order_ids(stripe_shop)
    refunded = await stripe_shop.call("refund_order", {"order_id": order_id})
    [refund] = fake_stripe.refunds.values()
    invoice = next(iter(fake_stripe.invoices.values()))
    paid_by = invoice["payments"]["data"][0]["payment"]["payment_intent"]
    assert refund["payment_intent"] == paid_by and refund["amount"] == 1799
    assert refunded["amount"]["amount_minor"] == 1799 and refunded["order"]["order_id"] == order_id
    assert (await stripe_shop.webhook(fake_stripe.last_event("charge.refunded"))).status_code == 200
    assert (await stripe_shop.order(order_id)).status == "refunded"


async def test_simulated_refunding_an_order_made_from_an_invoice(shop: Shop) -> None:
    started = await shop.call(
        "subscribe", {"product_id": SERUM, "interval_weeks": 4, "confirm": True}, user=ANA
    )
    await pay_simulated(shop, started["checkout_url"])
    [order_id] = await _order_ids(shop)
    await shop.call("refund_order", {"order_id": order_id})
    assert (await shop.order(order_id)).status == "refunded"


async def test_erasing_your_data_ends_your_membership_first_and_unlinks_it(shop: Shop) -> None:
    joined = await shop.call("join_premium", {"plan": "yearly", "confirm": True}, user=ANA)
    await pay_simulated(shop, joined["checkout_url"])
    exported = await shop.call("export_my_data", user=ANA)
    [membership] = exported["commerce"]["memberships"]
    assert membership["plan"] == "yearly" and membership["status"] == "active"

    erased = await shop.call("delete_my_data", {"confirm": True}, user=ANA)
    assert erased["deleted"]["memberships_ended"] == 1
    assert (await premium(shop))["status"] == "none"  # nothing of theirs is left to show
    async with shop.services.db.session() as session:
        row = await session.get(Membership, membership["id"])
    assert row is not None and row.user_id != ANA and row.provider_subscription_id
    provider = await billing_of(shop).retrieve_subscription(row.provider_subscription_id)
    assert provider["status"] == "canceled"  # nothing more is charged


async def _report(shop: Shop, user: str, days_ago: int, redness: float | None) -> str:
    from datetime import timedelta

    from shine_mcp.store.skin_reports import SkinReportRecord, add_report, new_report_id

    metric = {"name": "redness", "value": redness, "unit": "a*", "confidence": 0.8}
    record = SkinReportRecord(
        id=new_report_id(),
        user_id=user,
        created_at=datetime.now(UTC) - timedelta(days=days_ago),
        analysis={"metrics": [metric]},
        model_hashes={},
    )
    await add_report(shop.services.db, record)
    return record.id


async def test_progress_across_every_report_is_for_members_and_others_hear_it_is_premium(shop: Shop) -> None:
    first = await _report(shop, ANA, 60, 12.0)
    await _report(shop, ANA, 30, None)  # withheld in that photo: left out
    latest = await _report(shop, ANA, 1, 9.5)
    refused = await shop.refused("track_skin_progress", user=ANA)
    assert "part of premium" in refused and "$7.99 a month" in refused and "compare_skin_reports" in refused

    joined = await shop.call("join_premium", {"plan": "monthly", "confirm": True}, user=ANA)
    await pay_simulated(shop, joined["checkout_url"])
    tracked = await shop.call("track_skin_progress", user=ANA)
    assert tracked["reports"] == 3
    [redness] = tracked["metrics"]
    assert [p["report_id"] for p in redness["points"]] == [first, latest] and redness["change"] == -2.5
    assert "part of premium" in await shop.refused("track_skin_progress", user=BEN)

    await shop.call("cancel_premium", {"confirm": True}, user=ANA)
    await advance(shop, 32)  # the paid month is over
    assert "part of premium" in await shop.refused("track_skin_progress", user=ANA)


async def test_stripe_cancelling_after_a_booked_downgrade_drops_the_switch_and_ends_at_the_period_end(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    provider = await _stripe_member(stripe_shop, fake_stripe, "yearly")
    await stripe_shop.call("change_premium_plan", {"plan": "monthly", "confirm": True}, user=ANA)
    cancelled = await stripe_shop.call("cancel_premium", {"confirm": True}, user=ANA)
    assert cancelled["ends_on"] and cancelled["switching_to"] is None and cancelled["premium"] is True
    [schedule] = fake_stripe.schedules.values()
    assert schedule["status"] == "released" and fake_stripe.subscriptions[provider]["cancel_at_period_end"]
    deleted = fake_stripe.renew(provider)
    assert deleted["type"] == "customer.subscription.deleted"  # no monthly phase, no charge
    assert (await stripe_shop.webhook(deleted)).status_code == 200
    assert (await premium(stripe_shop))["premium"] is False
