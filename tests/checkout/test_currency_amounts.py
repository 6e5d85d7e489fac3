"""Prices in currencies without cents (or with Stripe's own rules) reach Stripe as the amount the shop set:
a catalog file imported, bought through the real stripe SDK against the Stripe fake, paid and refunded."""

from __future__ import annotations

from pathlib import Path

from shine_mcp.store.catalog import upsert_products
from shine_mcp.store.importers import read_catalog
from shine_mcp.store.records import ProductIn
from tests.checkout.conftest import Shop
from tests.checkout.test_simulated import open_page, press
from tests.fakes.stripe_api import FakeStripe

SESSIONS = "/v1/checkout/sessions"
HEADER = "handle,brand,name,category,price,currency,stock\n"


async def import_one(shop: Shop, tmp_path: Path, price: str, currency: str) -> str:
    """Import a one-product catalog file the way `shine import` reads it; the product's id."""
    path = tmp_path / f"{currency.lower()}.csv"
    path.write_text(HEADER + f"gel-{currency.lower()},Shine,Barrier Gel,moisturizer,{price},{currency},10\n")
    parsed = read_catalog(path, default_currency="USD")
    assert not parsed.errors
    [record] = parsed.records
    assert isinstance(record, ProductIn)
    await upsert_products(shop.services.db, [record], source=f"import:{path.name}")
    return record.to_row("test").id


def line_amount(fake_stripe: FakeStripe) -> tuple[str, str]:
    [request] = fake_stripe.posts(SESSIONS)
    [line] = request.params["line_items"]
    return line["price_data"]["currency"], line["price_data"]["unit_amount"]


async def test_a_west_african_franc_price_reaches_stripe_undivided_and_the_order_is_paid(
    stripe_shop: Shop, fake_stripe: FakeStripe, tmp_path: Path
) -> None:
    product_id = await import_one(stripe_shop, tmp_path, "5000", "XOF")
    result = await stripe_shop.buy(product_id, 2)

    assert line_amount(fake_stripe) == ("xof", "5000")  # 5000 francs, not 500000
    assert result["order"]["total"]["display"] == "10,000 XOF"
    session_id = result["checkout_url"].rsplit("/", 1)[1]
    assert fake_stripe.sessions[session_id]["amount_total"] == 10000

    assert (await stripe_shop.webhook(fake_stripe.complete(session_id))).status_code == 200
    order = await stripe_shop.order(result["order"]["order_id"])
    assert order.status == "paid" and order.total_minor == 10000


async def test_a_krona_price_is_sent_in_hundredths_and_read_back_in_kronur(
    stripe_shop: Shop, fake_stripe: FakeStripe, tmp_path: Path
) -> None:
    product_id = await import_one(stripe_shop, tmp_path, "1990", "ISK")
    result = await stripe_shop.buy(product_id)

    assert line_amount(fake_stripe) == ("isk", "199000")  # Stripe's special case: 1990 kr as 199000
    assert result["order"]["total"]["display"] == "1,990 ISK"
    session_id = result["checkout_url"].rsplit("/", 1)[1]
    await stripe_shop.webhook(fake_stripe.complete(session_id))
    order_id = result["order"]["order_id"]
    order = await stripe_shop.order(order_id)
    assert order.status == "paid" and order.total_minor == 1990  # the amounts agree: no hold for a mismatch

    refund = await stripe_shop.call("refund_order", {"order_id": order_id, "amount": 500})
    [sent] = fake_stripe.posts("/v1/refunds")
    assert sent.params["amount"] == "50000"
    assert refund["amount"]["display"] == "500 ISK"
    await stripe_shop.webhook(fake_stripe.last_event("charge.refunded"))
    assert (await stripe_shop.order(order_id)).amount_refunded_minor == 500


async def test_a_dinar_price_stripe_cannot_charge_exactly_is_refused_before_stripe_is_called(
    stripe_shop: Shop, fake_stripe: FakeStripe, tmp_path: Path
) -> None:
    product_id = await import_one(stripe_shop, tmp_path, "5.124", "KWD")
    await stripe_shop.call("add_to_cart", {"product_id": product_id})
    message = await stripe_shop.refused("checkout")
    assert "5.124 KWD" in message
    assert fake_stripe.posts(SESSIONS) == []


async def test_the_simulated_checkout_keeps_stripe_units_and_shows_kronur(shop: Shop, tmp_path: Path) -> None:
    product_id = await import_one(shop, tmp_path, "1990", "ISK")
    result = await shop.buy(product_id)

    page, _ = await open_page(shop, result["checkout_url"])
    assert "1,990 ISK" in page and "199,000" not in page
    await press(shop, result["checkout_url"], "pay")
    order = await shop.order(result["order"]["order_id"])
    assert order.status == "paid" and order.total_minor == 1990
