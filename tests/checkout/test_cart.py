"""The cart: totals in minor units from catalog prices, stock and currency rules, price changes pointed out."""

from __future__ import annotations

from shine_mcp.store.orders import Order
from tests.checkout.conftest import CLEANSER, FOAMING, SERUM, Shop


async def test_totals_multiply_catalog_prices_by_quantities(shop: Shop) -> None:
    await shop.call("add_to_cart", {"product_id": SERUM, "quantity": 2})
    cart = await shop.call("add_to_cart", {"product_id": CLEANSER, "quantity": 3})

    lines = {line["product_id"]: line for line in cart["lines"]}
    assert lines[SERUM]["line_total"] == {"amount_minor": 4400, "currency": "USD", "display": "$44.00"}
    assert lines[CLEANSER]["line_total"]["amount_minor"] == 3 * 1799
    assert cart["subtotal"]["amount_minor"] == 4400 + 5397
    assert cart["subtotal"]["display"] == "$97.97"
    assert cart["item_count"] == 5


async def test_adding_again_adds_to_the_quantity(shop: Shop) -> None:
    await shop.call("add_to_cart", {"product_id": SERUM, "quantity": 1})
    cart = await shop.call("add_to_cart", {"product_id": SERUM, "quantity": 2})
    assert [(line["product_id"], line["quantity"]) for line in cart["lines"]] == [(SERUM, 3)]


async def test_update_and_remove_change_the_subtotal(shop: Shop) -> None:
    await shop.call("add_to_cart", {"product_id": SERUM, "quantity": 2})
    await shop.call("add_to_cart", {"product_id": CLEANSER})
    cart = await shop.call("update_cart_item", {"product_id": SERUM, "quantity": 1})
    assert cart["subtotal"]["amount_minor"] == 2200 + 1799
    cart = await shop.call("remove_from_cart", {"product_id": CLEANSER})
    assert cart["subtotal"]["amount_minor"] == 2200
    cart = await shop.call("update_cart_item", {"product_id": SERUM, "quantity": 0})
    assert cart["lines"] == [] and cart["subtotal"] is None


async def test_a_product_in_another_currency_is_refused(shop: Shop) -> None:
    await shop.set_product(FOAMING, currency="EUR", price_minor=1500)
    await shop.call("add_to_cart", {"product_id": SERUM})
    message = await shop.refused("add_to_cart", {"product_id": FOAMING})
    assert "EUR" in message and "USD" in message
    cart = await shop.call("view_cart")
    assert [line["product_id"] for line in cart["lines"]] == [SERUM]


async def test_an_empty_cart_takes_any_currency(shop: Shop) -> None:
    await shop.set_product(FOAMING, currency="EUR", price_minor=1500)
    await shop.call("add_to_cart", {"product_id": SERUM})
    await shop.call("remove_from_cart", {"product_id": SERUM})
    cart = await shop.call("add_to_cart", {"product_id": FOAMING})
    assert cart["subtotal"] == {"amount_minor": 1500, "currency": "EUR", "display": "€15.00"}


async def test_more_than_the_stock_is_refused(shop: Shop) -> None:
    await shop.set_product(SERUM, stock=2)
    await shop.call("add_to_cart", {"product_id": SERUM, "quantity": 2})
    message = await shop.refused("add_to_cart", {"product_id": SERUM})
    assert "only 2" in message
    await shop.set_product(CLEANSER, stock=0)
    assert "out of stock" in await shop.refused("add_to_cart", {"product_id": CLEANSER})


async def test_an_unknown_product_is_named_in_the_refusal(shop: Shop) -> None:
    message = await shop.refused("add_to_cart", {"product_id": "prd_nope"})
    assert "prd_nope" in message and "search_products" in message


async def test_a_price_change_is_shown_and_checkout_tells_the_user(shop: Shop) -> None:
    await shop.call("add_to_cart", {"product_id": SERUM, "quantity": 2})
    await shop.set_product(SERUM, price_minor=2500)

    cart = await shop.call("view_cart")
    assert cart["lines"][0]["unit_price"]["amount_minor"] == 2500
    assert cart["lines"][0]["price_changed_from"]["amount_minor"] == 2200
    assert any("$25.00" in notice and "$22.00" in notice for notice in cart["notices"])

    message = await shop.refused("checkout")
    assert "$25.00" in message and "$22.00" in message
    assert await shop.count(Order) == 0

    # Told once: the cart now holds the new price and the next checkout charges it.
    assert (await shop.call("view_cart"))["lines"][0]["price_changed_from"] is None
    result = await shop.call("checkout")
    assert result["order"]["total"]["amount_minor"] == 5000


async def test_each_person_sees_only_their_own_cart(shop: Shop) -> None:
    await shop.call("add_to_cart", {"product_id": SERUM}, user="usr_ana")
    await shop.call("add_to_cart", {"product_id": CLEANSER, "quantity": 2}, user="usr_ben")
    ana = await shop.call("view_cart", user="usr_ana")
    ben = await shop.call("view_cart", user="usr_ben")
    assert [line["product_id"] for line in ana["lines"]] == [SERUM]
    assert [line["product_id"] for line in ben["lines"]] == [CLEANSER]
    assert (await shop.call("view_cart"))["lines"] == []  # the local user's own, empty cart


async def test_a_product_removed_from_the_catalog_blocks_checkout_until_removed(shop: Shop) -> None:
    await shop.call("add_to_cart", {"product_id": SERUM})
    await shop.call("add_to_cart", {"product_id": CLEANSER})
    await shop.set_product(CLEANSER, stock=0)
    message = await shop.refused("checkout")
    assert "out of stock" in message and "update_cart_item" in message
    await shop.call("remove_from_cart", {"product_id": CLEANSER})
    assert (await shop.call("checkout"))["order"]["total"]["amount_minor"] == 2200
