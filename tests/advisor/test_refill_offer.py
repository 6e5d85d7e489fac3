"""The offline advisor offers refills after a routine, and "subscribe to the serum" starts one only after
the shopper's yes to what the subscribe tool itself described (product, interval and price)."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from sqlmodel import select

from agent import OfflinePlanner
from shine_mcp.services import Services
from shine_mcp.store.subscriptions import Subscription
from tests.advisor.conftest import Chat, chatting


def calls(chat: Chat) -> list[tuple[str, dict[str, Any]]]:
    return [
        (block["name"], block["input"])
        for message in chat.conversation.messages
        for block in message["content"]
        if block.get("type") == "tool_use"
    ]


async def subscriptions(services: Services) -> list[Subscription]:
    async with services.db.session() as session:
        return list((await session.execute(select(Subscription))).scalars().all())


async def test_a_routine_offers_refills_and_subscribing_asks_first_then_starts_on_yes(
    server: MCPServer, services: Services
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        routine = await chat.say("build me a routine for dry skin")
        asked = await chat.say("subscribe to the serum")
        started_before_yes = await subscriptions(services)
        done = await chat.say("yes")
        started = await subscriptions(services)

    assert "Want refills? I can send any of these every few weeks" in routine.text
    made = calls(chat)
    assert made[0][0] == "build_routine"
    [(_, first), (_, second)] = [c for c in made if c[0] == "subscribe"]
    serum = [
        step["product"]["id"]
        for step in routine.cards("routine")[0]["am"] + routine.cards("routine")[0]["pm"]
        if step["product"].get("category") == "serum"
    ]
    assert first == {"product_id": serum[0]}  # the routine's serum, nothing started yet
    assert "This starts a refill subscription" in asked.text and "every" in asked.text
    assert "Reply “yes”" in asked.text and "confirm=true" not in asked.text
    assert started_before_yes == []
    assert second == {"product_id": serum[0], "confirm": True}  # exactly what was described, now with a yes
    [sub] = started
    assert sub.items[0]["product_id"] == serum[0] and sub.status == "incomplete"
    assert f"every {sub.interval_weeks} weeks" in done.text


async def test_saying_no_to_the_refill_starts_nothing(server: MCPServer, services: Services) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        await chat.say("build me a routine for dry skin")
        await chat.say("subscribe to the serum")
        declined = await chat.say("no thanks")
        assert await subscriptions(services) == []

    assert [name for name, _ in calls(chat)].count("subscribe") == 1
    assert "Reply “yes”" not in declined.text
