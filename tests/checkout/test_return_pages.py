"""The pages Stripe sends shoppers back to (`/checkout/success`, `/checkout/cancel`): rate-limited per IP,
never a Stripe call for an id Shine did not make, and an order's lines and total only to its owner (the
signed link Shine put in the checkout, or the owner's web session)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import update
from sqlmodel import col

from shine_mcp.auth.sessions import cookie_name, create_session
from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.orders.return_links import sign_return
from shine_mcp.store.orders import Order
from tests.checkout.conftest import BASE_URL, SERUM, Shop, in_own_task, open_shop, shop_settings
from tests.fakes.stripe_api import FakeStripe

PRODUCT = "Retinaldehyde Cream Serum"
PRICE = "$22.00"


def local(url: str) -> str:
    return url.removeprefix(BASE_URL)


def stripe_lookups(fake: FakeStripe) -> int:
    return sum(1 for r in fake.requests if r.method == "GET" and r.path.startswith("/v1/checkout/sessions/"))


def shows_the_order(page: httpx.Response, order_id: str) -> bool:
    return order_id in page.text or PRODUCT in page.text or PRICE in page.text


async def stripe_return_url(shop: Shop, fake: FakeStripe) -> tuple[str, str, str]:
    """Buy a serum with Stripe; the success page URL Stripe would send the shopper to, its session, the order."""
    result = await shop.buy(SERUM)
    session_id = result["checkout_url"].rsplit("/", 1)[1]
    success = fake.sessions[session_id]["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
    return local(success), session_id, result["order"]["order_id"]


async def test_the_return_pages_are_rate_limited_per_ip(settings: Settings) -> None:
    limited = shop_settings(settings.data_dir, rate_limit_auth=2, rate_limit_ip=1000)
    async with in_own_task(open_shop(limited)) as shop:
        cancels = [(await shop.http.get("/checkout/cancel?order_id=ord_x")).status_code for _ in range(3)]
        success = await shop.http.get("/checkout/success?session_id=cs_test_x")
        health = await shop.http.get("/healthz")
    assert cancels == [200, 200, 429]
    assert success.status_code == 429 and int(success.headers["retry-after"]) >= 1
    assert health.status_code == 200  # other routes are not in this bucket


async def test_made_up_session_ids_never_reach_stripe(stripe_shop: Shop, fake_stripe: FakeStripe) -> None:
    _, real_session, order_id = await stripe_return_url(stripe_shop, fake_stripe)
    before = stripe_lookups(fake_stripe)
    made_up = [
        {"session_id": "cs_test_made_up"},
        {"session_id": "cs_live_" + "a" * 58},
        {"session_id": "not a session"},
        {"session_id": "cs_test_" + "b" * 300},
        # Someone else's order id with a forged token does not open the provider lookup either.
        {"session_id": "cs_test_made_up", "order_id": order_id, "sig": "4102444800.AAAAAAAAAAAAAAAAAAAAAAAA"},
    ]
    for params in made_up:
        page = await stripe_shop.http.get("/checkout/success", params=params)
        assert page.status_code == 404 and not shows_the_order(page, order_id)
    assert stripe_lookups(fake_stripe) == before
    assert real_session in fake_stripe.sessions  # the real one is untouched


async def test_the_success_page_shows_the_order_only_through_its_signed_link(
    stripe_shop: Shop, fake_stripe: FakeStripe
) -> None:
    success, session_id, order_id = await stripe_return_url(stripe_shop, fake_stripe)
    assert parse_qs(urlsplit(success).query)["order_id"] == [order_id]
    fake_stripe.complete(session_id)

    before = stripe_lookups(fake_stripe)
    bare = await stripe_shop.http.get("/checkout/success", params={"session_id": session_id})
    assert bare.status_code == 200 and "Thank you" in bare.text
    assert not shows_the_order(bare, order_id)
    assert stripe_lookups(fake_stripe) == before  # and it asked Stripe nothing

    page = await stripe_shop.http.get(success)
    assert page.status_code == 200
    assert "payment is confirmed" in page.text and order_id in page.text
    assert PRODUCT in page.text and PRICE in page.text


async def test_the_cancel_page_shows_no_order_to_someone_with_only_its_id(shop: Shop) -> None:
    result = await shop.buy(SERUM)
    order_id = result["order"]["order_id"]
    for query in (
        f"order_id={order_id}",
        "order_id=ord_00000000000000000000",
        "order_id=",
        "order_id=x' or 1",
    ):
        page = await shop.http.get(f"/checkout/cancel?{query}")
        assert page.status_code == 200
        assert "Your checkout was cancelled" in page.text and "nothing was charged" in page.text
        assert not shows_the_order(page, order_id)
        assert 'href="/">Return to the shop' in page.text


async def test_a_forged_expired_or_borrowed_token_shows_nothing(shop: Shop) -> None:
    mine = (await shop.buy(SERUM, user="gst_0123456789abcdef"))["order"]["order_id"]
    theirs = (await shop.buy(SERUM, user="gst_fedcba9876543210"))["order"]["order_id"]
    stale = sign_return(theirs, shop.settings, utcnow() - timedelta(days=8))
    borrowed = sign_return(mine, shop.settings, utcnow())
    fresh = sign_return(theirs, shop.settings, utcnow())
    for sig in (stale, borrowed, "4102444800.forged", fresh + "x", "", "²." + fresh.split(".")[1]):
        page = await shop.http.get("/checkout/cancel", params={"order_id": theirs, "sig": sig})
        assert not shows_the_order(page, theirs), sig
    # The same token on another order id shows nothing either; on its own order it does.
    swapped = await shop.http.get("/checkout/cancel", params={"order_id": theirs, "sig": borrowed})
    assert not shows_the_order(swapped, theirs)
    own = await shop.http.get("/checkout/cancel", params={"order_id": theirs, "sig": fresh})
    assert theirs in own.text and PRICE in own.text and "without paying" in own.text


async def test_the_owner_s_web_session_sees_the_order_without_a_token(shop: Shop) -> None:
    owner_token, owner = await create_session(
        shop.services.db, shop.settings, "gst_0123456789abcdef", now=utcnow(), guest=True
    )
    other_token, _ = await create_session(
        shop.services.db, shop.settings, "gst_fedcba9876543210", now=utcnow(), guest=True
    )
    order_id = (await shop.buy(SERUM, user=owner.user_id))["order"]["order_id"]
    name = cookie_name(shop.settings)
    as_owner = await shop.http.get(
        f"/checkout/cancel?order_id={order_id}", headers={"Cookie": f"{name}={owner_token}"}
    )
    as_other = await shop.http.get(
        f"/checkout/cancel?order_id={order_id}", headers={"Cookie": f"{name}={other_token}"}
    )
    assert order_id in as_owner.text and PRODUCT in as_owner.text
    assert not shows_the_order(as_other, order_id)


async def test_a_session_shine_never_stored_is_recovered_only_through_the_signed_link(
    stripe_settings: Settings, fake_stripe: FakeStripe
) -> None:
    """Shine stopped after Stripe made the session and before it stored its id; the shopper paid. The
    signed link lets the success page find it at Stripe; the bare session id does not."""
    async with in_own_task(open_shop(stripe_settings)) as shop:
        success, session_id, order_id = await stripe_return_url(shop, fake_stripe)
        async with shop.services.db.session() as session:
            await session.execute(
                update(Order).where(col(Order.id) == order_id).values(checkout_session_id=None)
            )
            await session.commit()
        fake_stripe.complete(session_id)
        before = stripe_lookups(fake_stripe)
        bare = await shop.http.get("/checkout/success", params={"session_id": session_id})
        assert bare.status_code == 404 and stripe_lookups(fake_stripe) == before

        page = await shop.http.get(success)
        assert page.status_code == 200 and "payment is confirmed" in page.text and order_id in page.text
        order = await shop.order(order_id)
        assert order.status == "paid" and order.checkout_session_id == session_id
