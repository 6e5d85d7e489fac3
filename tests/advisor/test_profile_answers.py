"""Asking Shine what it knows about you: the offline advisor reads the saved profile and says it in a
shopper's words, with how to change it; an empty profile says how to save one."""

from __future__ import annotations

import re
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer

from agent import OfflinePlanner
from tests.advisor.conftest import chatting

ASKS = [
    "what's my profile",
    "show my profile",
    "what do you know about me",
    "my skin profile",
    "what allergies did I save",
]
DEVELOPER_WORDS = re.compile(
    r"get_profile|update_profile|avoid_ingredients|pregnant_or_nursing|\bnull\b|\bNone\b|\btool\b|[a-z]_[a-z]"
)


def _calls(messages: list[Any]) -> list[str]:
    return [b["name"] for m in messages for b in m["content"] if b.get("type") == "tool_use"]


@pytest.mark.parametrize("asked", ASKS)
async def test_asking_what_shine_knows_reads_the_saved_profile_in_a_shoppers_words(
    server: MCPServer, asked: str
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        await chat.client.call_tool(
            "update_profile",
            {
                "skin_type": "combination",
                "concerns": ["dark_spots"],
                "avoid_ingredients": ["lanolin"],
                "pregnant_or_nursing": True,
                "confirm": True,
            },
        )
        seen = await chat.say(asked)
        called = _calls(chat.conversation.messages)

    assert called == ["get_profile"]
    assert "combination" in seen.text
    assert "dark spots" in seen.text
    assert "lanolin" in seen.text
    assert "pregnan" in seen.text.lower()
    assert "save it" in seen.text or "what changed" in seen.text  # how to change it
    assert not DEVELOPER_WORDS.search(seen.text), seen.text


async def test_an_empty_profile_says_nothing_is_saved_and_how_to_save(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("show my profile")
        called = _calls(chat.conversation.messages)

    assert called == ["get_profile"]
    assert "nothing" in seen.text.lower() and "save it" in seen.text
    assert "combination" not in seen.text and "Saved to your profile" not in seen.text
    assert not DEVELOPER_WORDS.search(seen.text), seen.text


async def test_saving_to_my_profile_still_saves_and_is_not_read_as_a_question(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        await chat.say("I have oily skin")
        saved = await chat.say("save it to my profile")
        called = _calls(chat.conversation.messages)

    assert called[-1] == "update_profile"
    assert "Saved to your profile" in saved.text
