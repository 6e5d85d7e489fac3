"""One less in the cart: the widget's "−" on a cart line (a message naming the product and its variant) and
a shopper's own "remove one …" / "just one …" lower that line's quantity through update_cart_item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

from agent import OfflinePlanner
from shine_mcp.services import Services
from shine_mcp.store.catalog import upsert_products
from shine_mcp.store.importers import read_catalog
from shine_mcp.store.records import product_id_for
from tests.advisor.conftest import chatting

TEMPLATE = Path(__file__).parents[1] / "fakes" / "fixtures" / "shopify_template.csv"
PRODUCT = product_id_for("example-tinted-moisturiser")


def action(verb: str, variant: dict[str, Any], tail: str) -> str:
    """The message the widget sends for a cart line's button (see widget.js `variantAction`)."""
    return f"{verb} Example Tinted Moisturiser – {variant['title']} ({PRODUCT}, {variant['id']}) {tail}"


def counts(cart: dict[str, Any]) -> dict[str, int]:
    return {item["variant_id"]: item["quantity"] for item in cart["items"]}


async def two_shades(services: Services, chat: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    parsed = read_catalog(TEMPLATE, default_currency="USD")
    await upsert_products(services.db, parsed.records, source="import:shopify_template.csv")
    detail = (await chat.client.call_tool("get_product", {"product_id": PRODUCT})).structured_content
    first, second = [v for v in detail["variants"] if v["in_stock"]][:2]
    return first, second


async def test_the_minus_button_takes_one_of_that_shade_out_and_then_the_line(
    server: MCPServer, services: Services
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        first, second = await two_shades(services, chat)
        await chat.say(action("Add", first, "to my cart"))
        await chat.say(action("Add one more", first, "to my cart"))
        await chat.say(action("Add", second, "to my cart"))
        one_less = await chat.say(action("Remove one", first, "from my cart"))  # the cart line's "−"
        none_left = await chat.say(action("Remove one", first, "from my cart"))

    assert one_less.started() == ["update_cart_item"]
    assert counts(one_less.cards("cart")[-1]) == {first["id"]: 1, second["id"]: 1}
    assert counts(none_left.cards("cart")[-1]) == {second["id"]: 1}
    assert "Removed one" in one_less.text


async def test_just_one_sets_the_quantity_to_one(server: MCPServer, services: Services) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        first, _ = await two_shades(services, chat)
        await chat.say(f"add 3 {PRODUCT} {first['id']} to my cart")
        answer = await chat.say(f"just one {PRODUCT} {first['id']} please")

    assert counts(answer.cards("cart")[-1]) == {first["id"]: 1}


async def test_remove_one_typed_in_a_new_chat_reads_the_cart_first(
    server: MCPServer, services: Services
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        first, _ = await two_shades(services, chat)
        added = {"product_id": PRODUCT, "variant_id": first["id"], "quantity": 3}
        await chat.client.call_tool("add_to_cart", added)
        answer = await chat.say(f"remove one {PRODUCT} {first['id']} from my cart")

    assert answer.started() == ["view_cart", "update_cart_item"]
    assert counts(answer.cards("cart")[-1]) == {first["id"]: 2}
