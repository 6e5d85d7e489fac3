"""Variants in cards: a cart card carries each line's variant, and the widget's card actions (messages
naming a product and one of its variants) add and remove exactly that shade."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

from agent import OfflinePlanner
from agent.cards import cart_card, product_card
from shine_mcp.services import Services
from shine_mcp.store.catalog import upsert_products
from shine_mcp.store.importers import read_catalog
from shine_mcp.store.records import product_id_for
from tests.advisor.conftest import chatting

TEMPLATE = Path(__file__).parents[1] / "fakes" / "fixtures" / "shopify_template.csv"
PRODUCT = product_id_for("example-tinted-moisturiser")


def action(verb: str, variant: dict[str, Any], tail: str) -> str:
    """The message the widget sends for a card's button on one variant (see widget.js `variantAction`)."""
    return f"{verb} Example Tinted Moisturiser – {variant['title']} ({PRODUCT}, {variant['id']}) {tail}"


async def test_card_actions_on_one_of_two_shades_change_only_that_shade(
    server: MCPServer, services: Services
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        parsed = read_catalog(TEMPLATE, default_currency="USD")
        await upsert_products(services.db, parsed.records, source="import:shopify_template.csv")
        detail = (await chat.client.call_tool("get_product", {"product_id": PRODUCT})).structured_content
        assert detail is not None
        first, second = [v for v in detail["variants"] if v["in_stock"]][:2]
        await chat.say(action("Add", first, "to my cart"))
        added = await chat.say(action("Add", second, "to my cart"))
        more = await chat.say(action("Add one more", first, "to my cart"))  # the cart line's "+"
        removed = await chat.say(action("Remove", second, "from my cart"))
        cart = (await chat.client.call_tool("view_cart", {})).structured_content

    shown = added.cards("cart")[-1]["items"]
    assert sorted(i["variant_id"] for i in shown) == sorted([first["id"], second["id"]])
    assert all(i["variant"] for i in shown)  # each line says which shade it is
    counts = {i["variant_id"]: i["quantity"] for i in more.cards("cart")[-1]["items"]}
    assert counts == {first["id"]: 2, second["id"]: 1}
    assert [i["variant_id"] for i in removed.cards("cart")[-1]["items"]] == [first["id"]]
    assert cart is not None and [line["variant_id"] for line in cart["lines"]] == [first["id"]]


def test_a_cart_card_carries_each_line_s_variant_id_and_title() -> None:
    cart = {
        "lines": [
            {
                "product_id": "prd_1",
                "variant_id": "var_a",
                "brand": "B",
                "name": "Tint – Green / S",
                "quantity": 1,
                "unit_price": {"amount_minor": 100, "currency": "USD", "display": "$1.00"},
                "line_total": {"amount_minor": 100, "currency": "USD", "display": "$1.00"},
            }
        ]
    }
    card = cart_card(cart)
    assert card is not None
    assert (card["items"][0]["variant_id"], card["items"][0]["variant"]) == ("var_a", "Green / S")


def test_a_product_card_carries_its_price_range_and_in_stock_variants() -> None:
    usd = {"currency": "USD"}
    product = {
        "id": "prd_1",
        "name": "Tint",
        "price": {**usd, "amount_minor": 1000, "display": "$10.00"},
        "price_max": {**usd, "amount_minor": 1500, "display": "$15.00"},
        "variants": [
            {"id": "var_a", "title": "Green / S", "in_stock": True, "price": {**usd, "display": "$10.00"}},
            {"id": "var_b", "title": "Green / M", "in_stock": False, "price": {**usd, "display": "$15.00"}},
        ],
    }
    card = product_card(product)
    assert card is not None
    assert card["price_max"]["display"] == "$15.00"
    assert card["variants"] == [{"id": "var_a", "title": "Green / S", "price": "$10.00"}]


async def test_the_product_resource_lists_its_variants(server: MCPServer, services: Services) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        parsed = read_catalog(TEMPLATE, default_currency="USD")
        await upsert_products(services.db, parsed.records, source="import:shopify_template.csv")
        read = await chat.client.read_resource(f"shine://products/{PRODUCT}")

    detail = json.loads(read.contents[0].text)  # type: ignore[union-attr]
    assert len(detail["variants"]) == 12 and all(v["id"].startswith("var_") for v in detail["variants"])


async def test_a_search_result_card_offers_the_shades_of_a_product_with_several(
    server: MCPServer, services: Services
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        parsed = read_catalog(TEMPLATE, default_currency="USD")
        await upsert_products(services.db, parsed.records, source="import:shopify_template.csv")
        page = (
            await chat.client.call_tool("search_products", {"query": "tinted moisturiser"})
        ).structured_content
        answer = await chat.say("find me a tinted moisturiser")

    assert page is not None
    found = {p["id"]: p for p in page["products"]}
    assert len(found[PRODUCT]["variants"]) == 12
    assert all(p["variants"] == [] for pid, p in found.items() if pid != PRODUCT)  # one variant: no choice
    card = next(c for c in answer.cards("products")[-1]["products"] if c["id"] == PRODUCT)
    in_stock = [v for v in found[PRODUCT]["variants"] if v["in_stock"]]
    assert [v["id"] for v in card["variants"]] == [v["id"] for v in in_stock] and len(in_stock) > 1
