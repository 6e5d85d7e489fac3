"""Checkout: one cart version → one order and one payment session, prices snapshotted, orders private."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from shine_mcp.config import Settings
from shine_mcp.store.catalog import demo_catalog_records, upsert_products
from shine_mcp.store.db import open_database
from shine_mcp.store.orders import Order, SimulatedSession
from tests.checkout.conftest import CLEANSER, SERUM, Shop, in_own_task, open_shop, shop_settings


async def test_checkout_twice_gives_one_order_and_one_session(shop: Shop) -> None:
    await shop.call("add_to_cart", {"product_id": SERUM, "quantity": 2})
    first = await shop.call("checkout")
    again = await shop.call("checkout")

    assert first["reused"] is False and again["reused"] is True
    assert again["order"]["order_id"] == first["order"]["order_id"]
    assert again["checkout_url"] == first["checkout_url"]
    assert await shop.count(Order) == 1
    assert await shop.count(SimulatedSession) == 1


async def test_checkout_returns_a_simulated_link_that_says_so(shop: Shop) -> None:
    result = await shop.buy(SERUM, 2)
    assert result["simulated"] is True
    assert "SIMULATED" in result["notice"] and "no money" in result["notice"]
    assert result["checkout_url"].startswith("http://127.0.0.1:8000/simulated-checkout/cs_sim_")
    assert result["order"]["status"] == "pending"
    assert result["order"]["total"] == {"amount_minor": 4400, "currency": "USD", "display": "$44.00"}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_two_simultaneous_checkouts_of_one_cart_make_one_order(
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
    user = f"usr_{uuid.uuid4().hex[:12]}"
    # Two Shine processes (each with its own engine) on one database, and a shopper double-clicking.
    async with in_own_task(open_shop(config)) as one, in_own_task(open_shop(config)) as two:
        await one.call("add_to_cart", {"product_id": SERUM, "quantity": 3}, user=user)
        results = await asyncio.gather(
            one.call("checkout", user=user),
            two.call("checkout", user=user),
            one.call("checkout", user=user),
        )
        assert len({r["order"]["order_id"] for r in results}) == 1
        assert len({r["checkout_url"] for r in results}) == 1
        assert await one.count(Order, Order.user_id == user) == 1
        assert await one.count(SimulatedSession, SimulatedSession.user_id == user) == 1


async def test_the_order_keeps_the_name_and_price_it_was_bought_at(shop: Shop) -> None:
    result = await shop.buy(SERUM, 2)
    await shop.set_product(SERUM, name="Renamed Serum", price_minor=9900)
    order = await shop.call("get_order", {"order_id": result["order"]["order_id"]})
    line = order["lines"][0]
    assert line["name"] == "Retinaldehyde Cream Serum 0.10%"
    assert line["unit_price"]["amount_minor"] == 2200
    assert order["total"]["amount_minor"] == 4400


async def test_changing_the_cart_after_checkout_closes_the_old_link(shop: Shop) -> None:
    first = await shop.buy(SERUM, 1)
    await shop.call("add_to_cart", {"product_id": CLEANSER})
    second = await shop.call("checkout")

    assert second["order"]["order_id"] != first["order"]["order_id"]
    assert second["order"]["total"]["amount_minor"] == 2200 + 1799
    assert second["replaced_orders"] == [first["order"]["order_id"]]
    old = await shop.call("get_order", {"order_id": first["order"]["order_id"]})
    assert old["status"] == "cancelled" and old["checkout_url"] is None
    page = await shop.http.get(first["checkout_url"].removeprefix("http://127.0.0.1:8000"))
    assert "expired" in page.text and "Pay (simulated)</button>" not in page.text


async def test_return_pages_must_belong_to_the_shop(sim_settings: Settings) -> None:
    config = sim_settings.model_copy(update={"allowed_origins": ["https://shop.example"]})
    async with in_own_task(open_shop(config)) as shop:
        await shop.call("add_to_cart", {"product_id": SERUM})
        message = await shop.refused("checkout", {"success_url": "https://evil.example/thanks"})
        assert "success_url" in message and "shop.example" in message
        result = await shop.call(
            "checkout",
            {
                "success_url": "https://shop.example/thanks?s={CHECKOUT_SESSION_ID}",
                "cancel_url": "https://shop.example/cart",
            },
        )
        order = await shop.order(result["order"]["order_id"])
        assert order.success_url == "https://shop.example/thanks?s={CHECKOUT_SESSION_ID}"
        assert order.cancel_url == "https://shop.example/cart"


async def test_an_empty_cart_cannot_check_out(shop: Shop) -> None:
    assert "cart is empty" in await shop.refused("checkout")


async def test_orders_are_private_to_their_buyer(shop: Shop) -> None:
    result = await shop.buy(SERUM, user="usr_ana")
    order_id = result["order"]["order_id"]
    assert (await shop.call("get_order", {"order_id": order_id}, user="usr_ana"))["order_id"] == order_id
    assert "no order" in await shop.refused("get_order", {"order_id": order_id}, user="usr_ben")
    assert "no order" in await shop.refused("cancel_order", {"order_id": order_id}, user="usr_ben")
    assert (await shop.call("list_orders", user="usr_ben"))["orders"] == []
    listed = await shop.call("list_orders", user="usr_ana")
    assert [o["order_id"] for o in listed["orders"]] == [order_id]


async def test_cancelling_before_payment_closes_the_link_and_keeps_the_cart(shop: Shop) -> None:
    result = await shop.buy(SERUM, 2)
    order_id = result["order"]["order_id"]
    cancelled = await shop.call("cancel_order", {"order_id": order_id, "confirm": True})
    assert cancelled["status"] == "cancelled"

    page = await shop.http.get(result["checkout_url"].removeprefix("http://127.0.0.1:8000"))
    assert "Pay (simulated)</button>" not in page.text
    assert (await shop.call("view_cart"))["item_count"] == 2
    again = await shop.call("checkout")
    assert again["order"]["order_id"] != order_id and again["reused"] is False
    assert "cancelled" in await shop.refused("cancel_order", {"order_id": order_id})


async def test_a_malformed_order_id_fails_validation(shop: Shop) -> None:
    message = await shop.refused("get_order", {"order_id": "12; DROP TABLE orders"})
    assert "order_id" in message
