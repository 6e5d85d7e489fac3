"""What an MCP client sees besides tools: the prompts, completions, the tool list per connection (toolsets),
log notifications and the JSON-RPC error codes of prompts and resources."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import (
    LoggingMessageNotificationParams,
    PromptReference,
    ResourceTemplateReference,
    TextContent,
)

from shine_mcp.auth.identity import Caller, identity_meta
from shine_mcp.auth.policy import ADMIN, READ, SHOP
from shine_mcp.auth.toolsets import MERCHANT_TOOLS, toolset_of, toolsets_for
from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services
from shine_mcp.vocabulary import CATEGORIES, CONCERNS, SKIN_TYPES

SHOP_TOOLS = {"refund_order", "sales_report", "admin_import_product_page", "admin_list_audit_events"}
SERUM = "prd_b559697ee63c"  # Naturium Retinaldehyde Cream Serum 0.10%


def _text(result: Any) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


async def _names(client: Client, **kwargs: Any) -> set[str]:
    return {tool.name for tool in (await client.list_tools(**kwargs)).tools}


def _with(settings: Settings, **values: Any) -> Settings:
    return settings.model_copy(update=values)


# --- prompts -------------------------------------------------------------------------------------------


async def test_the_four_prompts_are_listed_with_titles_and_described_arguments(client: Client) -> None:
    prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert {p.title for p in prompts.values()} >= {
        "Analyse my skin from a photo",
        "Build me a routine",
        "Is this product safe for me?",
        "Find a product",
    }
    for prompt in prompts.values():
        assert prompt.description, prompt.name
        assert prompt.arguments and all(a.description for a in prompt.arguments), prompt.name
    routine = {a.name: a.required for a in prompts["build_routine"].arguments or []}
    assert routine == {"concerns": True, "budget": False, "skin_type": False}
    assert {a.name: a.required for a in prompts["is_this_safe_for_me"].arguments or []}["ingredients"]


async def test_the_routine_prompt_reads_concerns_and_budget_in_the_shoppers_words(client: Client) -> None:
    result = await client.get_prompt(
        "build_routine",
        {"concerns": "Dark spots, breakouts", "budget": "under $60", "skin_type": "oily skin"},
    )
    [message] = result.messages
    assert message.role == "user" and isinstance(message.content, TextContent)
    text = message.content.text
    assert "dark spots, acne, oily skin, spending at most 60 in total" in text
    assert "build_routine" in text and "get_profile" in text


async def test_the_safety_prompt_carries_the_pasted_ingredient_list(client: Client) -> None:
    inci = "Aqua, Glycerin, Parfum, Linalool"
    result = await client.get_prompt(
        "is_this_safe_for_me", {"ingredients": inci, "product_name": "Glow Cream"}
    )
    text = result.messages[0].content.text  # type: ignore[union-attr]
    assert inci in text and "(Glow Cream)" in text and "check_ingredients" in text


async def test_an_unknown_prompt_is_an_invalid_params_error(settings: Settings) -> None:
    for mode in ("auto", "legacy"):
        async with Client(build_server(settings), mode=mode) as client:
            with pytest.raises(MCPError) as error:
                await client.get_prompt("no_such_prompt", {})
        assert error.value.error.code == -32602, mode
        assert "no_such_prompt" in error.value.error.message


async def test_a_missing_or_unreadable_prompt_argument_is_an_invalid_params_error(client: Client) -> None:
    with pytest.raises(MCPError) as missing:
        await client.get_prompt("build_routine", {"budget": "50"})
    with pytest.raises(MCPError) as unreadable:
        await client.get_prompt("build_routine", {"concerns": "wrinkels"})
    with pytest.raises(MCPError) as unexpected:
        await client.get_prompt("find_product", {"what": "serum", "colour": "red"})
    assert missing.value.error.code == -32602 and "concerns" in missing.value.error.message
    assert unreadable.value.error.code == -32602 and "fine_lines" in unreadable.value.error.message
    assert unexpected.value.error.code == -32602 and "colour" in unexpected.value.error.message


# --- completions ---------------------------------------------------------------------------------------


async def test_product_ids_complete_by_id_prefix_and_by_brand_or_name(client: Client) -> None:
    ref = ResourceTemplateReference(uri="shine://products/{product_id}")
    by_id = (await client.complete(ref, {"name": "product_id", "value": SERUM[:7]})).completion
    by_name = (await client.complete(ref, {"name": "product_id", "value": "naturium retinal"})).completion
    everything = (await client.complete(ref, {"name": "product_id", "value": ""})).completion
    assert SERUM in by_id.values and all(v.startswith(SERUM[:7]) for v in by_id.values)
    assert SERUM in by_name.values
    assert len(everything.values) == 100 and everything.has_more and (everything.total or 0) > 100
    read = await client.read_resource(f"shine://products/{by_name.values[0]}")
    assert json.loads(read.contents[0].text)["name"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("prompt", "argument", "typed", "expected"),
    [
        ("find_product", "category", "s", ["serum", "sunscreen", "spot_treatment"]),
        ("find_product", "category", "", list(CATEGORIES)),
        ("build_routine", "skin_type", "co", ["combination"]),
        ("build_routine", "skin_type", "", list(SKIN_TYPES)),
        ("build_routine", "concerns", "dark", ["dark_spots", "dark_circles"]),
        ("build_routine", "concerns", "acne, dark", ["acne, dark_spots", "acne, dark_circles"]),
        ("analyse_skin_photo", "concerns", "", list(CONCERNS)),
    ],
)
async def test_prompt_arguments_complete_from_the_vocabulary(
    client: Client, prompt: str, argument: str, typed: str, expected: list[str]
) -> None:
    completion = (
        await client.complete(PromptReference(name=prompt), {"name": argument, "value": typed})
    ).completion
    assert set(expected) <= set(completion.values)
    assert completion.values[: len(expected)] == expected or not typed


async def test_a_shoppers_word_completes_to_what_it_means(client: Client) -> None:
    ref = PromptReference(name="build_routine")
    wrinkles = (await client.complete(ref, {"name": "concerns", "value": "wrinkl"})).completion
    assert "fine_lines" in wrinkles.values


async def test_completing_an_unknown_prompt_is_invalid_params_and_free_text_has_no_values(
    client: Client,
) -> None:
    with pytest.raises(MCPError) as error:
        await client.complete(PromptReference(name="nope"), {"name": "concerns", "value": "a"})
    budget = await client.complete(PromptReference(name="build_routine"), {"name": "budget", "value": "1"})
    assert error.value.error.code == -32602
    assert budget.completion.values == []


async def test_the_server_declares_completions_logging_and_prompts(settings: Settings) -> None:
    async with Client(build_server(settings), mode="legacy") as client:
        capabilities = client.server_capabilities
    assert capabilities.completions is not None and capabilities.logging is not None
    assert capabilities.prompts is not None


# --- toolsets ------------------------------------------------------------------------------------------


def test_every_shop_tool_is_a_merchant_or_admin_tool() -> None:
    assert {toolset_of(name, {"shine/scope": ADMIN}) for name in SHOP_TOOLS} == {"merchant", "admin"}
    assert all(toolset_of(name, {"shine/scope": ADMIN}) == "merchant" for name in MERCHANT_TOOLS)
    assert toolset_of("search_products") == "shopper" and toolset_of("admin_anything_new") == "admin"


async def test_the_local_user_is_a_shopper_by_default(client: Client) -> None:
    names = await _names(client)
    account = (await client.call_tool("get_account", {})).structured_content
    refused = await client.call_tool("refund_order", {"order_id": "ord_123"})
    assert "search_products" in names and "delete_my_data" in names and "close_my_account" in names
    assert not names & SHOP_TOOLS
    assert account is not None and account["roles"] == ["user"]
    assert account["scopes"] == ["shine:read", "shine:shop"]
    assert refused.is_error and "for the shop's admins" in _text(refused)


async def test_an_operator_opts_the_local_user_into_the_merchant_tools(settings: Settings) -> None:
    async with Client(build_server(_with(settings, toolsets=["shopper", "merchant"]))) as client:
        names = await _names(client)
        report = await client.call_tool("sales_report", {"start": "2026-01-01", "end": "2026-01-31"})
        audit = await client.call_tool("admin_list_audit_events", {})
    assert names >= MERCHANT_TOOLS and "search_products" in names
    assert "admin_list_audit_events" not in names
    assert not report.is_error, _text(report)
    assert audit.is_error and "--toolsets" in _text(audit)


async def test_every_toolset_opted_in_lists_every_tool(settings: Settings) -> None:
    everything = _with(settings, toolsets=["shopper", "merchant", "admin"])
    async with Client(build_server(everything)) as client:
        names = await _names(client)
    assert names >= SHOP_TOOLS
    assert len(names) == len(await build_server(everything).list_tools())


async def test_the_web_shells_signed_identity_gets_the_tools_of_its_roles(
    server: Any, settings: Settings
) -> None:
    async with Client(server) as client:
        admin = await _names(client, meta=identity_meta("usr_root", settings, roles=("user", "admin")))
        shopper = await _names(client, meta=identity_meta("usr_ana", settings))
    assert admin >= SHOP_TOOLS
    assert not shopper & SHOP_TOOLS and "search_products" in shopper


@pytest.mark.parametrize(
    ("roles", "scopes", "offered"),
    [
        ({"user", "admin"}, {READ, SHOP, ADMIN}, {"shopper", "merchant", "admin"}),
        ({"user", "admin"}, {READ, SHOP}, {"shopper"}),  # an admin who did not grant this client shine:admin
        ({"user"}, {READ, SHOP, ADMIN}, {"shopper"}),
    ],
)
def test_oauth_clients_get_the_shop_tools_only_for_admins_who_granted_them(
    settings: Settings, roles: set[str], scopes: set[str], offered: set[str]
) -> None:
    caller = Caller("usr_1", "http", frozenset(roles), frozenset(scopes), source="oauth", client_id="c")
    assert toolsets_for(caller, settings) == offered


# --- logging -------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")  # served for 2025 clients
async def test_log_notifications_follow_the_level_a_2025_client_sets(settings: Settings) -> None:
    heard: list[LoggingMessageNotificationParams] = []

    async def listen(params: LoggingMessageNotificationParams) -> None:
        heard.append(params)

    server = build_server(settings)
    async with Client(server, mode="legacy", logging_callback=listen) as client:
        await client.call_tool("read_product_page", {"url": "https://shop.example/p"})
        default = [(p.level, str(p.data).split()[1]) for p in heard]
        heard.clear()
        assert await client.set_logging_level("warning") is not None
        await client.call_tool("read_product_page", {"url": "https://shop.example/p"})
        quieter = [(p.level, str(p.data).split()[1]) for p in heard]
    assert default == [("info", "started"), ("warning", "failed")]
    assert quieter == [("warning", "failed")]
    assert all(p.logger == "shine" for p in heard)


async def test_a_2026_client_hears_logs_only_when_its_request_asks(settings: Settings) -> None:
    heard: list[LoggingMessageNotificationParams] = []

    async def listen(params: LoggingMessageNotificationParams) -> None:
        heard.append(params)

    async with Client(build_server(settings), logging_callback=listen) as silent:
        await silent.call_tool("read_product_page", {"url": "https://shop.example/p"})
    assert heard == []
    async with Client(build_server(settings), logging_callback=listen, log_level="info") as asking:
        await asking.call_tool("read_product_page", {"url": "https://shop.example/p"})
    assert [p.level for p in heard] == ["info", "warning"]


# --- resources -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "code"), [("legacy", -32002), ("auto", -32602)])
@pytest.mark.parametrize("uri", ["shine://products/prd_000000000000", "shine://nothing/here"])
async def test_a_missing_resource_has_the_code_of_the_clients_protocol(
    settings: Settings, services: Services, mode: str, code: int, uri: str
) -> None:
    async with Client(build_server(settings, services), mode=mode) as client:
        with pytest.raises(MCPError) as error:
            await client.read_resource(uri)
    assert error.value.error.code == code
