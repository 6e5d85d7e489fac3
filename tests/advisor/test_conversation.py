"""Long conversations are trimmed to fit the model's context: oldest tool results first, then the oldest
turns, never the current turn and never leaving a tool call without its result. And what counts as the
shopper's explicit yes."""

from __future__ import annotations

import json

import pytest
from mcp.server.mcpserver import MCPServer

from agent import Limits
from agent.anthropic_model import AnthropicModel
from agent.conversation import TRIMMED, Conversation, estimate_tokens, fit
from agent.policy import load_policy
from tests.advisor.conftest import chatting
from tests.fakes.anthropic_api import FakeAnthropic, Turn, text, tool_use, validate


def long_conversation(turns: int, result_chars: int = 4000) -> Conversation:
    conversation = Conversation()
    for i in range(turns):
        conversation.append("user", [{"type": "text", "text": f"question {i}"}])
        conversation.append(
            "assistant", [{"type": "tool_use", "id": f"t{i}", "name": "search_products", "input": {}}]
        )
        conversation.append(
            "user", [{"type": "tool_result", "tool_use_id": f"t{i}", "content": "x" * result_chars}]
        )
        conversation.append("assistant", [{"type": "text", "text": f"answer {i}"}])
    return conversation


def results(messages: list[dict]) -> list[str]:
    return [b["content"] for m in messages for b in m["content"] if b.get("type") == "tool_result"]


def test_the_estimate_is_the_length_of_the_conversation_as_json() -> None:
    """`fit` sums each message's measure instead of serialising the whole list: the sum must be the list's
    length as JSON (its commas and brackets included), or the budget drifts."""
    conversation = long_conversation(5, result_chars=333)
    conversation.append("user", [{"type": "text", "text": "crème ☀ 日焼け止め"}])
    for messages in ([], conversation.messages[:1], conversation.messages):
        whole = json.dumps(messages, ensure_ascii=False, separators=(",", ":"))
        assert estimate_tokens(messages) == int(len(whole) / 3.5)


def test_a_conversation_that_fits_is_sent_whole() -> None:
    messages = long_conversation(3).messages
    assert fit(messages, 100_000) is messages


def test_the_oldest_tool_results_are_emptied_first() -> None:
    messages = long_conversation(10).messages
    budget = estimate_tokens(messages) - 3000  # about three results too many

    fitted = fit(messages, budget)

    kept = results(fitted)
    assert len(fitted) == len(messages)  # no turn dropped: emptying results was enough
    assert kept[:3] == [TRIMMED] * 3 and TRIMMED not in kept[4:]
    assert estimate_tokens(fitted) <= budget
    assert results(messages)[0] == "x" * 4000  # the stored conversation is untouched


def test_when_emptying_results_is_not_enough_the_oldest_turns_go_but_the_current_one_stays() -> None:
    conversation = long_conversation(10)
    conversation.append("user", [{"type": "text", "text": "the question now"}])

    fitted = fit(conversation.messages, 150)

    assert fitted[0]["role"] == "user" and fitted[0]["content"][0]["text"] in (
        "question 9",
        "the question now",
    )
    assert fitted[-1]["content"][0]["text"] == "the question now"
    assert validate({"model": "m", "max_tokens": 1, "messages": fitted}) is None


def test_a_turn_that_opens_with_results_of_a_stopped_reply_loses_them_when_its_calls_are_dropped() -> None:
    conversation = long_conversation(4, result_chars=10)
    conversation.append(
        "assistant", [{"type": "tool_use", "id": "late", "name": "search_products", "input": {}}]
    )
    conversation.append(
        "user", [{"type": "tool_result", "tool_use_id": "late", "content": "not run", "is_error": True}]
    )
    conversation.append("user", [{"type": "text", "text": "go on"}])  # merged into the same user message
    conversation.append("assistant", [{"type": "text", "text": "ok"}])
    conversation.append("user", [{"type": "text", "text": "and now?"}])

    fitted = fit(conversation.messages, estimate_tokens(conversation.messages[-3:]))

    assert validate({"model": "m", "max_tokens": 1, "messages": fitted}) is None
    assert fitted[0]["content"] == [{"type": "text", "text": "go on"}]


async def test_the_model_receives_a_trimmed_conversation_the_api_accepts(
    claude: AnthropicModel, fake_anthropic: FakeAnthropic, server: MCPServer
) -> None:
    fake_anthropic.then = lambda _body: Turn([text("ok")])
    async with chatting(claude, server, limits=Limits(context_tokens=2500)) as chat:
        for i in range(6):
            fake_anthropic.script = [
                Turn([tool_use("search_products", {"query": "", "limit": 20})]),
                Turn([text(f"reply {i}")]),
            ]
            await chat.say(f"question {i}")

    last = fake_anthropic.requests[-1]["messages"]
    assert TRIMMED in json.dumps(last) or last[0]["content"][0]["text"] != "question 0"
    assert len(json.dumps(last)) < len(json.dumps(chat.conversation.messages))


@pytest.mark.parametrize(
    ("message", "confirmed"),
    [
        ("yes", True),
        ("Yes please, check out", True),
        ("ok go ahead", True),
        ("checkout", True),
        ("buy them", True),
        ("no", False),
        ("not yet, I want to add a cleanser", False),
        ("yes but remove the serum", False),
        ("wait", False),
        ("what does this serum do?", False),
    ],
)
def test_what_counts_as_an_explicit_yes_to_the_cart(message: str, confirmed: bool) -> None:
    assert load_policy().is_confirmation(message) is confirmed


def test_fitting_as_the_conversation_grows_measures_what_changed_and_agrees_with_fit() -> None:
    """`Conversation.fitted` keeps each message's size between calls; a message grown by `append` (a
    merge into the same role) or a conversation replaced by its stored form is measured again."""
    conversation = long_conversation(6, result_chars=900)
    budgets = (60, 400, 1500, 100_000)
    for i in range(6):
        conversation.append("user", [{"type": "text", "text": f"follow-up {i}"}])
        assert [conversation.fitted(b) for b in budgets] == [fit(conversation.messages, b) for b in budgets]
        conversation.append(
            "user", [{"type": "tool_result", "tool_use_id": f"late{i}", "content": "y" * 700}]
        )
        conversation.append("user", [{"type": "text", "text": "é" * 300}])  # merged: a new, longer message
        assert [conversation.fitted(b) for b in budgets] == [fit(conversation.messages, b) for b in budgets]
        conversation.messages = conversation.fitted(1200)  # what is stored, as a reply's save does
        assert conversation.fitted(800) == fit(conversation.messages, 800)


def test_the_stored_form_reads_back_as_the_same_conversation() -> None:
    conversation = long_conversation(3)
    conversation.state.turn, conversation.state.uploads = 3, ["upl_1"]
    stored = json.loads(json.dumps(conversation.as_json()))
    assert Conversation.model_validate(stored) == conversation
    assert stored == conversation.model_dump(mode="json")
