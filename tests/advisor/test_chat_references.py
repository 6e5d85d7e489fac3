"""The offline advisor understands what was said: a product named in chat is the product meant (by its
name, against what was shown and the catalog, asking when two match), "I want a refund" asks the shop for
one after saying which order and getting a yes, and "where is my order" tells the tracking number.
Driven through the real Shine server in process, over the demo catalog."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer

from agent import OfflinePlanner
from shine_mcp.clock import utcnow
from shine_mcp.orders import machine
from shine_mcp.orders.service import Commerce
from shine_mcp.services import Services
from tests.advisor.conftest import Chat, Recorder, chatting
from tests.advisor.test_offline import calls

ASK = "ask"  # the advisor asks which product is meant, and calls no tool that acts on one
FIRST_CARD = "the first card"  # the first product card of the previous reply

SUN_SERUM = "SKIN1004 Madagascar Centella Hyalu-Cica Water-Fit Sun Serum SPF 50+"
AMPOULE = "SKIN1004 Madagascar Centella Ampoule"
SOOTHING_CREAM = "SKIN1004 Madagascar Centella Soothing Cream"
CERAVE_CREAM = "CeraVe Moisturizing Cream"

# (what was said before, what the shopper says, the tool that should act, the product it acts on)
PHRASINGS: list[tuple[list[str], str, str, str]] = [
    ([], "Add the SKIN1004 sun serum", "add_to_cart", SUN_SERUM),
    ([], "add the skin1004 sun serum to my cart", "add_to_cart", SUN_SERUM),
    ([], "please add the Madagascar Centella Ampoule", "add_to_cart", AMPOULE),
    ([], "buy the SKIN1004 ampoule", "add_to_cart", AMPOULE),
    ([], "add the SKIN1004 sunscreen to my bag", "add_to_cart", SUN_SERUM),
    ([], "I'll take the CeraVe Moisturizing Cream", "add_to_cart", CERAVE_CREAM),
    ([], "put the centella soothing cream in my cart", "add_to_cart", SOOTHING_CREAM),
    ([], "add the centella", "add_to_cart", ASK),
    ([], "add the SKIN1004 serum", "add_to_cart", ASK),
    (["add the centella"], "the ampoule", "add_to_cart", AMPOULE),
    (["add the centella"], "the soothing cream please", "add_to_cart", SOOTHING_CREAM),
    (["add the centella"], "the first one", "add_to_cart", FIRST_CARD),
    (["add the SKIN1004 serum"], "the sun serum", "add_to_cart", SUN_SERUM),
    (["find a fragrance-free moisturiser for dry skin under $25"], "add the CeraVe cream", "add_to_cart", CERAVE_CREAM),
    (["find a fragrance-free moisturiser for dry skin under $25"], "add the CeraVe one", "add_to_cart", ASK),
    (["find a fragrance-free moisturiser for dry skin under $25"], "add the first one", "add_to_cart", FIRST_CARD),
    ([], "what's in the SKIN1004 sun serum?", "get_product", SUN_SERUM),
    ([], "tell me about the Madagascar Centella Ampoule", "get_product", AMPOULE),
    ([], "is the SKIN1004 sun serum safe if I'm pregnant?", "check_ingredients", SUN_SERUM),
    (["show me SKIN1004 products"], "what's in the ampoule?", "get_product", AMPOULE),
    ([], "add the SKIN1004 night cream", "add_to_cart", ASK),
    ([], "add the SKIN1004 soothing lotion", "add_to_cart", ASK),
    (["add the SKIN1004 soothing lotion"], "yes", "add_to_cart", SOOTHING_CREAM),
    (["add the SKIN1004 sun serum", "add the centella ampoule"], "remove the sun serum", "remove_from_cart", SUN_SERUM),
    (["add the SKIN1004 sun serum", "add the centella ampoule"], "take the ampoule out of my cart", "remove_from_cart", AMPOULE),
]  # fmt: skip


async def _named(chat: Chat, product_id: str) -> str:
    detail = (await chat.client.call_tool("get_product", {"product_id": product_id})).structured_content
    assert detail is not None
    return f"{detail['brand']} {detail['name']}"


def _acted_on(arguments: dict[str, Any]) -> str:
    if "product_id" in arguments:
        return str(arguments["product_id"])
    (product_id,) = arguments["product_ids"]
    return str(product_id)


@pytest.mark.parametrize(("before", "said", "tool", "meant"), PHRASINGS)
async def test_a_product_named_in_chat_is_the_product_meant(
    server: MCPServer, before: list[str], said: str, tool: str, meant: str
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        previous: Recorder | None = None
        for earlier in before:
            previous = await chat.say(earlier)
        made = len(calls(chat))
        seen = await chat.say(said)
        acted = [arguments for name, arguments in calls(chat)[made:] if name == tool]
        named = [await _named(chat, _acted_on(a)) for a in acted]

    if meant == ASK:
        assert acted == [], named
        assert "Which one do you mean" in seen.text or "Do you mean the" in seen.text, seen.text
        return
    if meant == FIRST_CARD:
        assert previous is not None
        first = previous.cards("products")[0]["products"][0]
        meant = f"{first['brand']} {first['name']}"
    assert named == [meant], seen.text


async def test_two_products_that_match_the_words_equally_are_offered_by_name(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("add the centella")

    assert "add_to_cart" not in [name for name, _ in calls(chat)]
    asked = seen.text.split("Which one do you mean:", 1)[1]
    assert AMPOULE in asked and SOOTHING_CREAM in asked


# --- orders: refunds and tracking ---------------------------------------------------------------------------
async def _paid_order(chat: Chat, services: Services, product: str) -> str:
    """Buy `product` through the chat and pay on the simulated page; returns the order id."""
    await chat.say(f"add the {product} to my cart")
    confirmed = await chat.say("yes, check out")
    link = confirmed.cards("checkout")[0]["url"]
    assert (await Commerce(services).gateway().pay(link.rsplit("/", 1)[1])).paid
    orders = (await chat.client.call_tool("list_orders", {})).structured_content
    assert orders is not None
    return str(orders["orders"][0]["order_id"])


async def _refund_requested(chat: Chat, order_id: str) -> bool:
    order = (await chat.client.call_tool("get_order", {"order_id": order_id})).structured_content
    assert order is not None
    return bool(order["refund_requested"])


async def test_i_want_a_refund_says_which_order_and_asks_before_requesting_it(
    server: MCPServer, services: Services
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        order_id = await _paid_order(chat, services, "SKIN1004 sun serum")
        asked = await chat.say("I want a refund")
        asked_first = not await _refund_requested(chat, order_id)
        done = await chat.say("yes, it broke me out")
        requested = await _refund_requested(chat, order_id)

    assert asked_first and "request_refund" not in [name for name, _ in calls(chat)[:-1]]
    assert order_id in asked.text and "Sun Serum" in asked.text and "Say “yes”" in asked.text
    assert calls(chat)[-1] == ("request_refund", {"order_id": order_id, "reason": "it broke me out"})
    assert requested and "refund request" in done.text


async def test_no_to_a_refund_asks_for_nothing(server: MCPServer, services: Services) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        order_id = await _paid_order(chat, services, "SKIN1004 sun serum")
        await chat.say("can I get my money back?")
        declined = await chat.say("no, never mind")
        requested = await _refund_requested(chat, order_id)

    assert not requested and "request_refund" not in [name for name, _ in calls(chat)]
    assert "won't ask for a refund" in declined.text


async def test_with_two_orders_a_refund_asks_which_then_confirms_the_one_chosen(
    server: MCPServer, services: Services
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        older = await _paid_order(chat, services, "SKIN1004 sun serum")
        newer = await _paid_order(chat, services, "Madagascar Centella Ampoule")
        which = await chat.say("I'd like a refund please")
        confirm = await chat.say("the second one")
        await chat.say("yes")

    assert "Which order" in which.text and which.text.index(newer) < which.text.index(older)
    assert older in confirm.text and "Sun Serum" in confirm.text
    name, arguments = calls(chat)[-1]
    assert name == "request_refund" and arguments["order_id"] == older
    assert arguments["reason"] == "I'd like a refund please"


async def test_where_is_my_order_tells_the_carrier_and_tracking_number(
    server: MCPServer, services: Services
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        order_id = await _paid_order(chat, services, "SKIN1004 sun serum")
        shipped = machine.Shipped(at=utcnow(), tracking_number="1Z999AA10123456784", carrier="UPS")
        await Commerce(services).ledger.apply(order_id, shipped)
        seen = await chat.say("where is my order?")
        listed = (await chat.client.call_tool("list_orders", {})).structured_content

    assert listed is not None
    assert (listed["orders"][0]["tracking_number"], listed["orders"][0]["carrier"]) == (
        "1Z999AA10123456784",
        "UPS",
    )
    assert "1Z999AA10123456784" in seen.text and "UPS" in seen.text
    (card,) = seen.cards("orders") or seen.cards("order")
    shown = card["orders"][0] if "orders" in card else card
    assert (shown["tracking_number"], shown["carrier"]) == ("1Z999AA10123456784", "UPS")


# --- what a shopper reads ------------------------------------------------------------------------------------
async def test_a_shopper_never_reads_set_up_notices(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        replies = [
            await chat.say(message)
            for message in ("hello", "help", "show me serums", "what's in the first one?", "xyzzy")
        ]
        raw = (await chat.client.call_tool("search_products", {"query": "serum"})).structured_content

    assert raw is not None and "shine catalog import" in raw["notice"]  # the merchant's note is there
    for seen in replies:
        for words in ("shine catalog import", "merchant", "offline advisor", "Demo catalog"):
            assert words not in seen.text, (words, seen.text)


async def test_each_suggestion_confirms_the_constraints_the_shopper_asked_for(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("Find me a fragrance-free moisturiser for dry skin under $25")

    cards = seen.cards("products")[0]["products"]
    assert cards
    for card in cards:
        price = card["price"]["display"]
        assert card["why"][0] == f"fragrance-free ✓, for dry skin ✓, {price} ≤ $25", card["why"]
    assert f"fragrance-free ✓, for dry skin ✓, {cards[0]['price']['display']} ≤ $25" in seen.text
