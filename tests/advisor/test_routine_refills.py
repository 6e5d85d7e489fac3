"""The offline advisor sets up refills for a whole routine from "yes, subscribe to the routine" (only after
the shopper's yes to what the tool itself described), shows them as a card, and changes them from the
card's words: skip the next delivery, cancel (which asks first)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from agent import OfflinePlanner
from shine_mcp.orders.service import Commerce
from shine_mcp.services import Services
from tests.advisor.conftest import chatting
from tests.advisor.test_refill_offer import calls, subscriptions


def routine_products(routine: dict[str, object]) -> list[str]:
    ids = [step["product"]["id"] for slot in ("am", "pm") for step in routine[slot]]  # type: ignore[index]
    return list(dict.fromkeys(ids))


async def test_yes_subscribe_to_the_routine_describes_it_then_starts_one_subscription_on_yes(
    server: MCPServer, services: Services
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        routine = await chat.say("build me a routine for dry skin")
        asked = await chat.say("yes, subscribe to the routine every 8 weeks")
        before_yes = await subscriptions(services)
        done = await chat.say("yes")
        started = await subscriptions(services)

    assert "subscribe to the routine" in routine.text  # the offer names it
    products = routine_products(routine.cards("routine")[0])
    [(_, first), (_, second)] = [c for c in calls(chat) if c[0] == "subscribe_to_routine"]
    assert first == {"product_ids": products, "interval_weeks": 8}
    assert (
        "This starts one refill subscription for the routine" in asked.text and "every 8 weeks" in asked.text
    )
    assert "Reply “yes”" in asked.text and before_yes == []
    assert second == {**first, "confirm": True}  # exactly what was described, with the yes
    [sub] = started
    assert [i["product_id"] for i in sub.items] == products and sub.interval_weeks == 8
    [card] = done.cards("subscriptions")
    [shown] = card["subscriptions"]
    assert shown["id"] == sub.id and shown["checkout_url"] and shown["interval_weeks"] == 8


async def test_the_card_words_skip_the_next_delivery_and_cancel_after_a_yes(
    server: MCPServer, services: Services
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        await chat.say("build me a routine for dry skin")
        await chat.say("subscribe to the routine")
        started = await chat.say("yes")
        [card] = started.cards("subscriptions")
        [shown] = card["subscriptions"]
        session_id = str(shown["checkout_url"]).rsplit("/", 1)[1]
        assert (await Commerce(services).gateway().pay(session_id)).paid

        listed = await chat.say("show my refills")
        [active] = listed.cards("subscriptions")[0]["subscriptions"]
        assert active["status"] == "active" and active["actions"] == ["skip", "pause", "cancel"]
        skipped = await chat.say(f"Skip the next delivery of my refills ({active['id']})")
        asked = await chat.say(f"Cancel my refills ({active['id']})")
        still = await subscriptions(services)
        cancelled = await chat.say("yes")

    assert "Skipped: the next delivery is now" in skipped.text
    [after_skip] = skipped.cards("subscriptions")[0]["subscriptions"]
    assert after_skip["next_delivery"] > active["next_delivery"]
    assert "This cancels your refill subscription" in asked.text and "Reply “yes”" in asked.text
    assert not still[0].cancel_at_period_end  # nothing cancelled before the yes
    assert "Cancelled: the delivery already paid for still comes" in cancelled.text
    [ended] = cancelled.cards("subscriptions")[0]["subscriptions"]
    assert ended["cancels_at_period_end"] and "cancel" not in ended["actions"]
