"""Deleting, cancelling and lifting a safety limit need the shopper's explicit yes, enforced in code.

The tools change nothing without `confirm=true` and say what they would do (no elicitation needed, so
2026 clients work too). The advisor loop lets `confirm=true` through only when the shopper said yes in
their latest message to exactly that call, which the tool described in the turn before. The model is the
real anthropic SDK against the scripted local Messages API fake; the tools are the real Shine server."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from agent.anthropic_model import AnthropicModel
from shine_mcp.auth.identity import identity_meta
from shine_mcp.config import Settings
from shine_mcp.services import Services
from shine_mcp.store.orders import get_order
from shine_mcp.store.profiles import get_profile, save_profile
from shine_mcp.store.skin_reports import SkinReportRecord, add_report, get_report, new_report_id
from tests.advisor.conftest import chatting
from tests.fakes.anthropic_api import FakeAnthropic, Turn, text, tool_use

SERUM = "prd_b559697ee63c"


@dataclass
class Action:
    """One confirm-first call on a shopper's data: how to arrange it, and whether it happened."""

    tool: str
    arguments: dict[str, Any]
    happened: Callable[[], Awaitable[bool]]


Arrange = Callable[[Services, Client, str], Awaitable[Action]]


async def _report(services: Services, user_id: str) -> str:
    record = SkinReportRecord(id=new_report_id(), user_id=user_id, analysis={"metrics": []}, model_hashes={})
    return (await add_report(services.db, record)).id


async def skin_report(services: Services, client: Client, user_id: str) -> Action:
    report_id = await _report(services, user_id)

    async def gone() -> bool:
        return await get_report(services.db, user_id, report_id) is None

    return Action("delete_skin_report", {"report_id": report_id}, gone)


async def unpaid_order(services: Services, client: Client, user_id: str) -> Action:
    meta = identity_meta(user_id, services.settings)
    await client.call_tool("add_to_cart", {"product_id": SERUM}, meta=meta)
    checkout = await client.call_tool("checkout", {}, meta=meta)
    assert checkout.structured_content is not None
    order_id = checkout.structured_content["order"]["order_id"]

    async def cancelled() -> bool:
        order = await get_order(services.db, order_id)
        return order is not None and order.status == "cancelled"

    return Action("cancel_order", {"order_id": order_id}, cancelled)


async def allergy(services: Services, client: Client, user_id: str) -> Action:
    await save_profile(services.db, user_id, {"avoid_ingredients": ["lanolin", "fragrance"]})

    async def lifted() -> bool:
        profile = await get_profile(services.db, user_id)
        return profile is not None and "lanolin" not in profile.avoid_ingredients

    return Action("update_profile", {"avoid_ingredients": ["fragrance"]}, lifted)


async def cleared_allergies(services: Services, client: Client, user_id: str) -> Action:
    action = await allergy(services, client, user_id)
    return Action("update_profile", {"clear": ["avoid_ingredients"]}, action.happened)


async def pregnancy(services: Services, client: Client, user_id: str) -> Action:
    await save_profile(services.db, user_id, {"pregnant_or_nursing": True})

    async def lifted() -> bool:
        profile = await get_profile(services.db, user_id)
        return profile is not None and not profile.pregnant_or_nursing

    return Action("update_profile", {"pregnant_or_nursing": False}, lifted)


ACTIONS: dict[str, Arrange] = {
    "delete a skin report": skin_report,
    "cancel an unpaid order": unpaid_order,
    "remove an allergy": allergy,
    "clear the allergies": cleared_allergies,
    "set pregnancy to false": pregnancy,
}


def confirmed(arguments: dict[str, Any]) -> dict[str, Any]:
    return {**arguments, "confirm": True}


def new_shopper(settings: Settings) -> tuple[str, Callable[[], Any]]:
    """A signed-in shopper's id, and the identity the web shell passes with each of their tool calls."""
    user_id = f"usr_{secrets.token_hex(6)}"
    return user_id, lambda: identity_meta(user_id, settings)


@pytest.mark.parametrize("name", sorted(ACTIONS))
async def test_the_model_cannot_go_ahead_before_the_shopper_says_yes(
    claude: AnthropicModel,
    fake_anthropic: FakeAnthropic,
    server: MCPServer,
    services: Services,
    name: str,
) -> None:
    user_id, meta = new_shopper(services.settings)
    async with chatting(claude, server, meta=meta) as chat:
        action = await ACTIONS[name](services, chat.client, user_id)
        fake_anthropic.script = [
            Turn([tool_use(action.tool, confirmed(action.arguments))]),
            Turn([text("Shall I go ahead?")]),
            Turn([tool_use(action.tool, confirmed(action.arguments))]),
            Turn([text("Done.")]),
        ]

        seen = await chat.say("please sort this out for me")
        (refusal,) = fake_anthropic.tool_results(1)
        assert refusal["is_error"] is True and "the shopper has not said yes" in refusal["content"]
        assert "needs_confirmation" in seen.notices()
        assert not await action.happened()

        # A yes now answers a question the tool never put to them: still refused.
        await chat.say("yes")
        (again,) = fake_anthropic.tool_results(3)
        assert again["is_error"] is True and "the shopper has not said yes" in again["content"]
        assert not await action.happened()


@pytest.mark.parametrize("name", sorted(ACTIONS))
async def test_the_tool_describes_the_action_and_the_shoppers_yes_lets_it_happen(
    claude: AnthropicModel,
    fake_anthropic: FakeAnthropic,
    server: MCPServer,
    services: Services,
    name: str,
) -> None:
    user_id, meta = new_shopper(services.settings)
    async with chatting(claude, server, meta=meta) as chat:
        action = await ACTIONS[name](services, chat.client, user_id)
        fake_anthropic.script = [
            Turn([tool_use(action.tool, action.arguments)]),
            Turn([text("This cannot be undone. Shall I go ahead?")]),
            Turn([tool_use(action.tool, confirmed(action.arguments))]),
            Turn([text("Done.")]),
        ]

        asked = await chat.say("please sort this out for me")
        (described,) = fake_anthropic.tool_results(1)
        assert described["is_error"] is True and "Nothing was changed yet" in described["content"]
        assert "confirm=true" in described["content"]
        assert "needs_confirmation" in asked.notices()
        assert not await action.happened()

        done = await chat.say("yes, go ahead")
        (result,) = fake_anthropic.tool_results(3)
        assert not result.get("is_error"), result["content"]
        assert done.finished()[-1].ok
        assert await action.happened()


async def test_the_model_cannot_answer_the_question_itself_in_the_same_reply(
    claude: AnthropicModel, fake_anthropic: FakeAnthropic, server: MCPServer, services: Services
) -> None:
    user_id, meta = new_shopper(services.settings)
    async with chatting(claude, server, meta=meta) as chat:
        action = await skin_report(services, chat.client, user_id)
        fake_anthropic.script = [
            Turn([tool_use(action.tool, action.arguments)]),
            Turn([tool_use(action.tool, confirmed(action.arguments))]),  # "fixing" the error at once
            Turn([text("Shall I delete it?")]),
        ]
        await chat.say("delete my last report")

        (refusal,) = fake_anthropic.tool_results(2)
        assert refusal["is_error"] is True and "the shopper has not said yes" in refusal["content"]
        assert not await action.happened()


async def test_a_yes_covers_only_the_call_the_tool_described(
    claude: AnthropicModel, fake_anthropic: FakeAnthropic, server: MCPServer, services: Services
) -> None:
    user_id, meta = new_shopper(services.settings)
    async with chatting(claude, server, meta=meta) as chat:
        described = await skin_report(services, chat.client, user_id)
        other = await skin_report(services, chat.client, user_id)
        fake_anthropic.script = [
            Turn([tool_use(described.tool, described.arguments)]),
            Turn([text("Delete that report?")]),
            Turn([tool_use(other.tool, confirmed(other.arguments))]),
            Turn([text("Done.")]),
        ]
        await chat.say("delete my report")
        await chat.say("yes")

        (refusal,) = fake_anthropic.tool_results(3)
        assert refusal["is_error"] is True and "the shopper has not said yes" in refusal["content"]
        assert not await other.happened() and not await described.happened()


async def test_a_message_that_is_not_a_yes_does_not_let_it_happen(
    claude: AnthropicModel, fake_anthropic: FakeAnthropic, server: MCPServer, services: Services
) -> None:
    user_id, meta = new_shopper(services.settings)
    async with chatting(claude, server, meta=meta) as chat:
        action = await allergy(services, chat.client, user_id)
        fake_anthropic.script = [
            Turn([tool_use(action.tool, action.arguments)]),
            Turn([text("Remove lanolin from your allergies?")]),
            Turn([tool_use(action.tool, confirmed(action.arguments))]),
            Turn([text("Done.")]),
        ]
        await chat.say("I think I can use lanolin now")
        await chat.say("no wait, let me ask my doctor first")

        (refusal,) = fake_anthropic.tool_results(3)
        assert refusal["is_error"] is True
        assert not await action.happened()


@pytest.mark.parametrize("tool", ["delete_my_data", "close_my_account"])
async def test_account_wide_deletions_stay_out_of_the_advisors_reach_even_after_a_yes(
    claude: AnthropicModel,
    fake_anthropic: FakeAnthropic,
    server: MCPServer,
    services: Services,
    tool: str,
) -> None:
    user_id, meta = new_shopper(services.settings)
    async with chatting(claude, server, meta=meta) as chat:
        report = await skin_report(services, chat.client, user_id)
        fake_anthropic.script = [
            Turn([tool_use(tool, {})]),
            Turn([text("Delete everything?")]),
            Turn([tool_use(tool, {"confirm": True})]),
            Turn([text("Done.")]),
        ]
        await chat.say("delete all my data")
        await chat.say("yes")

        (refusal,) = fake_anthropic.tool_results(3)
        assert refusal["is_error"] is True
        assert not await report.happened()


# --- any MCP client: without confirm=true nothing changes --------------------------------------------------
@pytest.mark.parametrize("name", sorted(ACTIONS))
async def test_without_confirm_the_tool_changes_nothing_and_says_what_it_would_do(
    client: Client, services: Services, name: str
) -> None:
    user_id = f"usr_{secrets.token_hex(6)}"
    action = await ACTIONS[name](services, client, user_id)
    meta = identity_meta(user_id, services.settings)

    for arguments in (action.arguments, {**action.arguments, "confirm": False}):
        answer = await client.call_tool(action.tool, arguments, meta=meta)
        message = " ".join(getattr(c, "text", "") for c in answer.content)
        assert answer.is_error and "Nothing was changed yet" in message and "confirm=true" in message
        assert not await action.happened()

    done = await client.call_tool(action.tool, confirmed(action.arguments), meta=meta)
    assert not done.is_error
    assert await action.happened()


@pytest.mark.parametrize("tool", ["delete_my_data", "close_my_account"])
async def test_account_wide_deletions_change_nothing_without_confirm(
    client: Client, services: Services, tool: str
) -> None:
    user_id = f"usr_{secrets.token_hex(6)}"
    report = await skin_report(services, client, user_id)
    answer = await client.call_tool(tool, {}, meta=identity_meta(user_id, services.settings))
    assert answer.is_error and not await report.happened()


async def test_saving_without_removing_a_limit_needs_no_confirmation(
    client: Client, services: Services
) -> None:
    user_id = f"usr_{secrets.token_hex(6)}"
    await save_profile(services.db, user_id, {"avoid_ingredients": ["lanolin"], "pregnant_or_nursing": True})
    meta = identity_meta(user_id, services.settings)
    answer = await client.call_tool(
        "update_profile",
        {"avoid_ingredients": ["Lanolin", "fragrance"], "skin_type": "dry", "pregnant_or_nursing": True},
        meta=meta,
    )
    assert not answer.is_error and answer.structured_content is not None
    assert answer.structured_content["avoid_ingredients"] == ["Lanolin", "fragrance"]
