"""Each process keeps the conversation it stored last (`web_shell.held_chats`), so the next reply in a chat
does not read it again; the stored version decides whether the copy is still the chat. Checked here with
the real web shell: two servers on one database taking turns in one chat, a reply that fails half-way, a
held copy whose row was changed behind it; and the keeper's limits on its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Literal

import httpx
import pytest
from sqlalchemy import create_engine, text

from agent import Conversation
from agent.conversation import fit
from agent.model import Finish, Message, ModelEvent, TextChunk, ToolSpec
from shine_mcp.config import Settings
from tests.advisor.web import post_chat, shine_web
from web_shell.held_chats import HeldChats


@pytest.fixture
def data_dir(settings: Settings, tmp_path: Path) -> Path:
    return tmp_path  # the `settings` fixture has put a copy of the demo-catalog database here


def said(client: httpx.Client) -> list[str]:
    return [m["text"] for m in client.get("/api/chat").json()["messages"] if m["role"] == "user"]


def test_turns_taken_on_two_servers_in_turn_are_all_kept(data_dir: Path) -> None:
    """Server A holds the chat as it stored it after the first turn; B then stores a second. A must see
    that its copy is no longer the chat and read it again, or its save would drop B's turn."""
    with (
        shine_web(data_dir) as (url_a, _),
        shine_web(data_dir) as (url_b, _),
        httpx.Client(base_url=url_a, timeout=30) as a,
    ):
        post_chat(a, {"message": "show me serums"})
        with httpx.Client(base_url=url_b, timeout=30, cookies=a.cookies) as b:
            post_chat(b, {"message": "and a moisturiser for dry skin"})
        _, third = post_chat(a, {"message": "what's in the first one?"})
        assert [e.data["code"] for e in third if e.event == "error"] == []
        assert said(a) == ["show me serums", "and a moisturiser for dry skin", "what's in the first one?"]


def test_the_next_reply_starts_from_the_held_copy_while_the_stored_version_is_unchanged(
    data_dir: Path, settings: Settings
) -> None:
    """Proof that the copy is used: a row changed without a new version is not read back (nothing in Shine
    writes a chat without bumping its version; this test does, to see which copy the reply started from).
    Once the version moves, the row is read again."""
    engine = create_engine(f"sqlite:///{settings.data_dir / 'shine.db'}")
    planted = (
        '{"messages": [{"role": "user", "content": "planted"}, {"role": "assistant", "content": "ok"}], '
        '"state": {}}'
    )
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        post_chat(client, {"message": "show me serums"})
        with engine.begin() as connection:
            connection.execute(text("UPDATE chat_sessions SET conversation = :c"), {"c": planted})
        post_chat(client, {"message": "something for dry skin"})
        assert said(client) == ["show me serums", "something for dry skin"]

        with engine.begin() as connection:
            connection.execute(
                text("UPDATE chat_sessions SET conversation = :c, version = version + 1"), {"c": planted}
            )
        post_chat(client, {"message": "thanks"})
        assert said(client) == ["planted", "thanks"]
    engine.dispose()


class FailsOnBoom:
    """Says something, then fails the whole reply (not a model error the advisor answers) when asked "boom"."""

    kind: Literal["scripted"] = "scripted"
    name = "fails on boom"

    async def respond(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ModelEvent]:
        last = messages[-1]["content"]
        asked = last if isinstance(last, str) else " ".join(b.get("text", "") for b in last)
        yield TextChunk("Working on it. ")
        if "boom" in asked:
            raise RuntimeError("the reply failed half-way")
        yield TextChunk("Done.")
        yield Finish("end_turn")


def test_a_reply_that_failed_half_way_leaves_the_held_copy_as_it_was_stored(data_dir: Path) -> None:
    with shine_web(data_dir, model=FailsOnBoom()) as (url, _), httpx.Client(base_url=url, timeout=30) as c:
        post_chat(c, {"message": "hello"})
        _, failed = post_chat(c, {"message": "boom"})
        assert "internal_error" in [e.data["code"] for e in failed if e.event == "error"]
        post_chat(c, {"message": "hello again"})
        history = c.get("/api/chat").json()["messages"]
    assert [m["text"] for m in history if m["role"] == "user"] == ["hello", "hello again"]
    assert [m["text"] for m in history if m["role"] == "assistant"] == ["Working on it. Done."] * 2


def test_a_carried_copy_changes_nothing_in_the_conversation_it_came_from() -> None:
    held = Conversation(messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    held.state.uploads.append("upl_1")
    reply = held.carried()
    reply.append("user", [{"type": "text", "text": "more"}])  # merges into the last message
    reply.append("assistant", [{"type": "text", "text": "ok"}])
    reply.state.turn += 1
    reply.state.uploads.append("upl_2")
    assert held.messages == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert held.state.turn == 0 and held.state.uploads == ["upl_1"]


def test_fitting_copies_only_the_messages_it_trims() -> None:
    """So a message left as it was keeps its measured size from one reply to the next."""
    result = "x" * 4000
    messages: list[Message] = [
        {"role": "user", "content": [{"type": "text", "text": "find serums"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "search", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": result}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Here they are."}]},
        {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
    ]
    fitted = fit(messages, 400)
    assert fitted[2] is not messages[2] and fitted[2]["content"][0]["content"] != result
    assert messages[2]["content"][0]["content"] == result  # the caller's message is left whole
    assert all(fitted[i] is messages[i] for i in (0, 1, 3, 4))


def conversation_of_chars(chars: int) -> Conversation:
    return Conversation(messages=[{"role": "user", "content": "x" * chars}])


def test_the_keeper_stays_within_its_budget_dropping_the_least_recently_used() -> None:
    keeper = HeldChats(budget_chars=3_500)
    for name in ("a", "b", "c"):
        keeper.hold(name, "u1", 1, conversation_of_chars(1_000))
    assert keeper.get("a", "u1") is not None  # now the most recently used
    keeper.hold("d", "u1", 1, conversation_of_chars(1_000))
    assert keeper.get("b", "u1") is None and len(keeper) == 3 and keeper.chars <= 3_500
    keeper.hold("huge", "u1", 1, conversation_of_chars(10_000))  # larger than the whole budget: not held
    assert keeper.get("huge", "u1") is None and len(keeper) == 3


def test_a_held_copy_is_only_for_its_owner_and_only_while_it_is_used() -> None:
    now = [0.0]
    keeper = HeldChats(idle_seconds=600, clock=lambda: now[0])
    keeper.hold("chat", "u1", 3, conversation_of_chars(10))
    assert keeper.get("chat", "someone else") is None
    now[0] = 500.0
    held = keeper.get("chat", "u1")
    assert held is not None and held.version == 3
    now[0] = 1_000.0  # 500 s after its last use
    assert keeper.get("chat", "u1") is not None
    now[0] = 1_700.0
    keeper.expire()  # what the chat service's sweep does every minute, with or without new chats
    assert len(keeper) == 0 and keeper.chars == 0
