"""What a product answer looks like next to its cards: the cards carry the list (in-stock products first),
the words only lead in, so on a phone the cards stay on screen."""

from __future__ import annotations

import re
from typing import Any

from mcp.server.mcpserver import MCPServer

from agent import OfflinePlanner
from agent.cards import products_in
from tests.advisor.conftest import chatting

NUMBERED_LINE = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)


def _found(*in_stock: bool) -> dict[str, Any]:
    return {
        "products": [
            {"id": f"prd_{i}", "name": f"Serum {i}", "brand": "Testbrand", "in_stock": stock}
            for i, stock in enumerate(in_stock)
        ]
    }


def test_out_of_stock_products_are_shown_after_the_ones_in_stock() -> None:
    cards = products_in(_found(True, False, True, False, True))

    assert [c["id"] for c in cards] == ["prd_0", "prd_2", "prd_4", "prd_1", "prd_3"]


async def test_a_product_answer_leads_in_to_the_cards_instead_of_listing_them_again(
    server: MCPServer,
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("find a moisturiser for dry skin under $30")

    cards = seen.cards("products")[0]["products"]
    assert len(cards) >= 3
    assert NUMBERED_LINE.search(seen.text) is None, seen.text
    assert cards[0]["name"] in seen.text  # the top pick is named once
    assert not [c["name"] for c in cards[1:] if c["name"] in seen.text]
    assert "moisturisers for dry skin under $30" in seen.text


async def test_an_out_of_stock_product_never_leads_the_suggestions(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("find salicylic acid")
        searched = [
            block["input"]
            for message in chat.conversation.messages
            for block in message["content"]
            if block.get("type") == "tool_use"
        ]
        raw = (await chat.client.call_tool("search_products", searched[0])).structured_content

    stock = [p["in_stock"] for p in raw["products"]]
    assert stock != sorted(stock, reverse=True)  # the catalog ranks one ahead of one in stock
    cards = seen.cards("products")[0]["products"]
    shown = [c["in_stock"] for c in cards]
    assert shown == sorted(shown, reverse=True)  # every in-stock card before any out-of-stock one
    assert cards[0]["in_stock"] and cards[0]["name"] in seen.text
