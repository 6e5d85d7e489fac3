"""The isolation matrix: two users and a guest, and every tool that reads or writes personal data.
Another person asking for someone's row gets "not found", never the data; admin tools refuse everyone
but admins; no tool answers one person with another person's data.

Adding a personal-data tool? Add it to `MATRIX`: how its owner creates a row (`create`, run as the owner,
returning the arguments that reach it and marker strings that only the owner's data contains) and whether
the tool addresses one row by id (`by_id`: another person gets exactly the answer a missing id gets, so
nobody can even learn the row exists) or answers with the caller's own rows (`own`).
`test_every_personal_tool_is_in_the_matrix` fails until it is there.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult

from shine_mcp.auth.accounts import upsert_user
from shine_mcp.auth.identity import identity_meta
from shine_mcp.auth.tool_guard import classify
from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.integrations.google import VerifiedPerson
from shine_mcp.services import Services
from tests.auth.support import Browser
from tests.auth.widget import SHOP, STRANGER, api, signed_in_token

# Words in a tool or resource name that mean it touches someone's own data.
PERSONAL_WORDS = (
    "account",
    "cart",
    "order",
    "checkout",
    "refund",
    "report",
    "profile",
    "photo",
    "feedback",
    "my_data",
    "subscri",
    "premium",
    "payment",
    "progress",
)


class Person:
    """Someone calling the in-process server the way the web shell does: with a signed identity."""

    def __init__(
        self, client: Client, settings: Settings, user_id: str, email: str | None, roles: tuple[str, ...]
    ):
        self.client, self.user_id, self.email = client, user_id, email
        self.meta = identity_meta(user_id, settings, roles=roles)

    async def call(self, tool: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        return await self.client.call_tool(tool, arguments or {}, meta=self.meta)


Created = tuple[dict[str, Any], list[str]]


@dataclass(frozen=True)
class Case:
    create: Callable[..., Awaitable[Created]]
    kind: Literal["by_id", "own"]
    needs_services: bool = False  # `create(owner, services)`: e.g. to pay the simulated checkout


def _missing(arguments: dict[str, Any]) -> dict[str, Any]:
    """The same arguments with every id swapped for one that exists nowhere (same prefix and length)."""
    return {
        k: (
            v.split("_", 1)[0] + "_" + secrets.token_hex(len(v.split("_", 1)[1]) // 2)
            if isinstance(v, str) and "_" in v
            else v
        )
        for k, v in arguments.items()
    }


async def _account(owner: Person) -> Created:
    return {}, [owner.user_id, owner.email or owner.user_id]


async def _reports(owner: Person, count: int) -> list[dict[str, Any]]:
    from tests.models.conftest import HOPPER

    photo = base64.b64encode(HOPPER.read_bytes()).decode()
    made = []
    for _ in range(count):
        result = await owner.call("analyze_skin", {"image": photo})
        assert not result.is_error and result.structured_content, _text(result)
        made.append(result.structured_content)
    return made


async def _one_report(owner: Person) -> Created:
    (report,) = await _reports(owner, 1)
    return {"report_id": report["report_id"]}, [report["report_id"], str(report["created_at"])[:19]]


async def _own_reports(owner: Person) -> Created:
    (report,) = await _reports(owner, 1)
    return {}, [report["report_id"]]


async def _two_reports(owner: Person) -> Created:
    before, after = await _reports(owner, 2)
    return {"before_id": before["report_id"], "after_id": after["report_id"]}, [
        str(before["created_at"])[:19]
    ]


# Demo catalog products (USD).
SERUM, CLEANSER = "prd_b559697ee63c", "prd_a10998b57b6e"


async def _ok(owner: Person, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await owner.call(tool, arguments)
    assert not result.is_error and result.structured_content is not None, _text(result)
    return result.structured_content


async def _cart(owner: Person) -> None:
    await _ok(owner, "add_to_cart", {"product_id": SERUM, "quantity": 7})
    await _ok(owner, "add_to_cart", {"product_id": CLEANSER, "quantity": 4})


def _cart_case(arguments: dict[str, Any], item_count: int) -> Callable[[Person], Awaitable[Created]]:
    """The owner holds 7 serums and 4 cleansers: a cart nobody else has, recognised by its unit count."""

    async def create(owner: Person) -> Created:
        await _cart(owner)
        return arguments, [f'"item_count": {item_count}']

    return create


async def _cart_for_checkout(owner: Person) -> Created:
    await _cart(owner)
    return {}, ['"quantity": 7']


async def _checked_out(owner: Person) -> dict[str, Any]:
    await _cart(owner)
    return (await _ok(owner, "checkout"))["order"]


async def _pending_order(owner: Person) -> Created:
    order = await _checked_out(owner)
    return {"order_id": order["order_id"]}, [str(order["created_at"])[:19]]


def _confirmed(create: Callable[[Person], Awaitable[Created]]) -> Callable[[Person], Awaitable[Created]]:
    """The same case, called with the owner's go-ahead (deleting and cancelling change nothing without)."""

    async def confirmed(owner: Person) -> Created:
        arguments, markers = await create(owner)
        return {**arguments, "confirm": True}, markers

    return confirmed


async def _own_orders(owner: Person) -> Created:
    return {}, [(await _checked_out(owner))["order_id"]]


async def _paid_order(owner: Person, services: Services) -> Created:
    from shine_mcp.orders.service import Commerce

    order = await _checked_out(owner)
    session_id = str(order["checkout_url"]).rsplit("/", 1)[1]
    # What the simulated page's Pay button does: a signed event through the webhook handler.
    assert (await Commerce(services).gateway().pay(session_id)).paid
    return {"order_id": order["order_id"], "reason": "it made my skin sting"}, [str(order["created_at"])[:19]]


async def _subscription(owner: Person, services: Services | None = None) -> str:
    """A refill subscription of the owner's, paid on the simulated page when `services` is given."""
    from shine_mcp.orders.service import Commerce

    started = await _ok(owner, "subscribe", {"product_id": SERUM, "interval_weeks": 5, "confirm": True})
    if services is not None:
        assert (await Commerce(services).gateway().pay(str(started["checkout_url"]).rsplit("/", 1)[1])).paid
    return str(started["subscription"]["subscription_id"])


async def _subscribing_to_the_routine_again(owner: Person) -> Created:
    # As for one product: the same routine again answers with the owner's unpaid subscription.
    args = {"product_ids": [SERUM, CLEANSER], "interval_weeks": 6, "confirm": True}
    started = await _ok(owner, "subscribe_to_routine", args)
    return args, [str(started["subscription"]["subscription_id"])]


async def _subscribing_again(owner: Person) -> Created:
    # The same request again answers with the owner's unpaid subscription: its id is theirs alone.
    sub_id = await _subscription(owner)
    return {"product_id": SERUM, "interval_weeks": 5, "confirm": True}, [sub_id]


async def _own_subscriptions(owner: Person) -> Created:
    return {}, [await _subscription(owner)]


async def _membership(owner: Person, services: Services | None = None) -> str:
    """A monthly premium membership of the owner's (its payment link), paid on the simulated page when
    `services` is given."""
    from shine_mcp.orders.service import Commerce

    joined = await _ok(owner, "join_premium", {"plan": "monthly", "confirm": True})
    if services is not None:
        assert (await Commerce(services).gateway().pay(str(joined["checkout_url"]).rsplit("/", 1)[1])).paid
    return str(joined["checkout_url"])


async def _joining_again(owner: Person) -> Created:
    # The same request again answers with the owner's unpaid membership: its payment link is theirs alone.
    return {"plan": "monthly", "confirm": True}, [await _membership(owner)]


async def _own_membership(owner: Person) -> Created:
    return {}, [await _membership(owner)]


def _paid_membership(
    arguments: dict[str, Any], marker: str
) -> Callable[[Person, Services], Awaitable[Created]]:
    async def create(owner: Person, services: Services) -> Created:
        await _membership(owner, services)
        return arguments, [marker]

    return create


async def _member_with_a_report(owner: Person, services: Services) -> Created:
    await _membership(owner, services)
    (report,) = await _reports(owner, 1)
    return {}, [report["report_id"]]


def _paid_subscription(extra: dict[str, Any]) -> Callable[[Person, Services], Awaitable[Created]]:
    async def create(owner: Person, services: Services) -> Created:
        sub_id = await _subscription(owner, services)
        return {"subscription_id": sub_id, **extra}, [sub_id]

    return create


async def _profile(owner: Person) -> Created:
    """A profile only the owner has: an avoided ingredient named by a random word."""
    marker = f"allergen{secrets.token_hex(4)}"
    await _ok(owner, "update_profile", {"avoid_ingredients": [marker], "skin_type": "dry"})
    return {}, [marker]


def _with_arguments(arguments: dict[str, Any]) -> Callable[[Person], Awaitable[Created]]:
    async def create(owner: Person) -> Created:
        return arguments, (await _profile(owner))[1]

    return create


async def _profile_to_delete(owner: Person) -> Created:
    await _profile(owner)
    return {"confirm": True}, ['"profile": 1']


async def _report_for_advice(owner: Person) -> Created:
    (report,) = await _reports(owner, 1)
    return {"report_id": report["report_id"]}, [report["report_id"]]


MATRIX: dict[str, Case] = {
    "get_profile": Case(create=_profile, kind="own"),
    "update_profile": Case(create=_with_arguments({"concerns": ["dryness"]}), kind="own"),
    "export_my_data": Case(create=_profile, kind="own"),
    "delete_my_data": Case(create=_profile_to_delete, kind="own"),
    "close_my_account": Case(create=_profile_to_delete, kind="own"),
    "recommend_products": Case(create=_report_for_advice, kind="by_id"),
    "build_routine": Case(create=_report_for_advice, kind="by_id"),
    "get_account": Case(create=_account, kind="own"),
    "view_cart": Case(create=_cart_case({}, 11), kind="own"),
    "add_to_cart": Case(create=_cart_case({"product_id": SERUM, "quantity": 1}, 12), kind="own"),
    "update_cart_item": Case(create=_cart_case({"product_id": SERUM, "quantity": 2}, 6), kind="own"),
    "remove_from_cart": Case(create=_cart_case({"product_id": SERUM}, 4), kind="own"),
    "checkout": Case(create=_cart_for_checkout, kind="own"),
    "list_orders": Case(create=_own_orders, kind="own"),
    "get_order": Case(create=_pending_order, kind="by_id"),
    "cancel_order": Case(create=_confirmed(_pending_order), kind="by_id"),
    "request_refund": Case(create=_paid_order, kind="by_id", needs_services=True),
    "get_skin_report": Case(create=_one_report, kind="by_id"),
    "list_skin_reports": Case(create=_own_reports, kind="own"),
    "compare_skin_reports": Case(create=_two_reports, kind="by_id"),
    "delete_skin_report": Case(create=_confirmed(_one_report), kind="by_id"),
    "subscribe": Case(create=_subscribing_again, kind="own"),
    "subscribe_to_routine": Case(create=_subscribing_to_the_routine_again, kind="own"),
    "list_subscriptions": Case(create=_own_subscriptions, kind="own"),
    "update_subscription": Case(
        create=_paid_subscription({"quantity": 3}), kind="by_id", needs_services=True
    ),
    "pause_subscription": Case(create=_paid_subscription({}), kind="by_id", needs_services=True),
    "cancel_subscription": Case(
        create=_paid_subscription({"confirm": True}), kind="by_id", needs_services=True
    ),
    "join_premium": Case(create=_joining_again, kind="own"),
    "premium_membership": Case(create=_own_membership, kind="own"),
    "change_premium_plan": Case(
        create=_paid_membership({"plan": "yearly", "confirm": True}, '"premium": true'),
        kind="own",
        needs_services=True,
    ),
    "cancel_premium": Case(
        create=_paid_membership({"confirm": True}, '"premium": true'), kind="own", needs_services=True
    ),
    "manage_payment_methods": Case(
        create=_paid_membership({}, "/simulated-portal/"), kind="own", needs_services=True
    ),
    "track_skin_progress": Case(create=_member_with_a_report, kind="own", needs_services=True),
}


def _text(result: CallToolResult) -> str:
    return json.dumps(result.model_dump(mode="json"))


@dataclass
class Cast:
    ana: Person
    bob: Person
    guest: Person
    admin: Person


async def _cast(client: Client, services: Services) -> Cast:
    settings = services.settings
    people = {}
    for name in ("ana", "bob", "root"):
        user = await upsert_user(
            services.db,
            VerifiedPerson(email=f"{name}@example.com", email_verified=True, name=name),
            now=utcnow(),
        )
        people[name] = user
    return Cast(
        ana=Person(client, settings, people["ana"].id, people["ana"].email, ("user",)),
        bob=Person(client, settings, people["bob"].id, people["bob"].email, ("user",)),
        guest=Person(client, settings, f"gst_{secrets.token_hex(8)}", None, ("user",)),
        admin=Person(client, settings, people["root"].id, people["root"].email, ("user", "admin")),
    )


async def test_every_personal_tool_is_in_the_matrix(server: MCPServer) -> None:
    tools = await server.list_tools()
    personal = {t.name for t in tools if any(word in t.name for word in PERSONAL_WORDS)}
    admin_only = {t.name for t in tools if classify(t.name, t.annotations, t.meta).scope == "shine:admin"}
    missing = sorted(personal - set(MATRIX) - admin_only)
    assert not missing, f"add these personal-data tools to MATRIX in {__file__}: {missing}"


# Resources that hold personal data: URI template → how the owner makes one (returning its URI and markers).
RESOURCE_MATRIX: dict[str, Callable[[Person], Awaitable[tuple[str, list[str]]]]] = {}


def _card_page(uri: str) -> bool:
    """An MCP Apps card page (`ui://`): a template the host fills with a tool's result, the same for all."""
    return uri.startswith("ui://")


async def test_every_personal_resource_is_in_the_matrix(server: MCPServer) -> None:
    async with Client(server) as client:
        uris = [str(r.uri) for r in (await client.list_resources()).resources]
        uris += [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
    personal = {u for u in uris if any(word in u for word in PERSONAL_WORDS) and not _card_page(u)}
    missing = sorted(personal - set(RESOURCE_MATRIX))
    assert not missing, f"add these personal-data resources to RESOURCE_MATRIX in {__file__}: {missing}"


async def test_card_pages_hold_no_personal_data_and_read_the_same_for_everyone(
    server: MCPServer, services: Services
) -> None:
    async with Client(server) as client:
        cast = await _cast(client, services)
        pages = [str(r.uri) for r in (await client.list_resources()).resources if _card_page(str(r.uri))]
        assert pages, "the card pages should be listed"
        for uri in pages:
            seen = {
                who.user_id: (await client.read_resource(uri, meta=who.meta)).model_dump(mode="json")
                for who in (cast.ana, cast.bob, cast.guest)
            }
            assert len({json.dumps(page, sort_keys=True) for page in seen.values()}) == 1, uri
            text = json.dumps(seen[cast.ana.user_id])
            assert cast.ana.user_id not in text and (cast.ana.email or "@") not in text, uri


@pytest.mark.parametrize("template", sorted(RESOURCE_MATRIX))
async def test_nobody_else_reads_the_owners_resources(
    server: MCPServer, services: Services, template: str
) -> None:
    async with Client(server) as client:
        cast = await _cast(client, services)
        uri, markers = await RESOURCE_MATRIX[template](cast.ana)
        own = json.dumps((await client.read_resource(uri, meta=cast.ana.meta)).model_dump(mode="json"))
        answers = {}
        for who in (cast.bob, cast.guest):
            try:
                read = await client.read_resource(uri, meta=who.meta)
                answers[who.user_id] = json.dumps(read.model_dump(mode="json"))
            except Exception as refused:  # "not found" for this person
                answers[who.user_id] = str(refused)
    assert any(marker in own for marker in markers), "the owner should read their own resource"
    for who, text in answers.items():
        assert not [m for m in markers if m in text], f"{who} read the owner's {template}"


def _without(text: str, values: list[str]) -> str:
    for value in values:
        text = text.replace(value, "<id>")
    return text


@pytest.mark.parametrize("tool", sorted(MATRIX))
async def test_nobody_else_gets_the_owners_data(server: MCPServer, services: Services, tool: str) -> None:
    case = MATRIX[tool]
    async with Client(server) as client:
        if tool not in {t.name for t in (await client.list_tools()).tools}:
            pytest.skip(f"{tool} is not registered")
        cast = await _cast(client, services)
        arguments, markers = await (
            case.create(cast.ana, services) if case.needs_services else case.create(cast.ana)
        )
        missing = _missing(arguments)
        # Others first: a tool that changes things (a deletion) must leave the owner's row untouched.
        others = {
            who.user_id: (await who.call(tool, arguments), await who.call(tool, missing))
            for who in (cast.bob, cast.guest)
        }
        own = await cast.ana.call(tool, arguments)
    assert not own.is_error, _text(own)
    assert any(marker in _text(own) for marker in markers), "the owner should see their own data"
    given = [str(v) for v in arguments.values()]
    for who, (result, for_missing) in others.items():
        leaked = [m for m in markers if m in _text(result) and m not in given]
        assert not leaked, f"{who} saw {leaked} through {tool}"
        if case.kind == "by_id":
            assert result.is_error, f"{who} reached the owner's row through {tool}: {_text(result)}"
            # Indistinguishable from an id that exists nowhere: no hint that the row exists.
            assert _without(_text(result), given) == _without(
                _text(for_missing), [str(v) for v in missing.values()]
            )


async def test_admin_tools_refuse_everyone_but_admins(server: MCPServer, services: Services) -> None:
    async with Client(server) as client:
        tools = await server.list_tools()  # every registered tool, whatever this connection is offered
        admin_tools = [
            t.name for t in tools if classify(t.name, t.annotations, t.meta).scope == "shine:admin"
        ]
        cast = await _cast(client, services)
        answers = {
            (tool, who.user_id): await who.call(tool)
            for tool in admin_tools
            for who in (cast.ana, cast.guest)
        }
        admin_answers = {tool: await cast.admin.call(tool) for tool in admin_tools}
    assert admin_tools, "there should be at least the audit log"
    for (tool, who), result in answers.items():
        assert result.is_error and "for the shop's admins" in _text(result), f"{tool} answered {who}"
    for tool, result in admin_answers.items():
        # An admin may still be refused for bad arguments, but never for not being an admin.
        assert "for the shop's admins" not in _text(result), tool


async def test_a_widget_token_reaches_only_its_owners_data(
    shine_settings: Callable[..., Settings],
    run_shine: Callable[[Settings], AbstractContextManager[str]],
) -> None:
    """The web side of the matrix: a widget token (the shop-site sign-in) reads its owner's data, from its
    own shop only; another person's token reads theirs; a token taken to another page reads nothing."""
    with run_shine(shine_settings(allowed_origins=[SHOP], rate_limit_auth=0)) as base:
        tokens = {}
        for email in ("ana@example.com", "bob@example.com"):
            async with httpx.AsyncClient(timeout=30) as http:  # each in their own browser
                tokens[email] = await signed_in_token(base, Browser(http, email=email))
        answers = {email: await api(base, token, path="/api/my-data") for email, token in tokens.items()}
        stolen = await api(base, tokens["ana@example.com"], STRANGER, path="/api/my-data")
    for email, answer in answers.items():
        assert answer.status_code == 200 and email in answer.text
        others = [e for e in answers if e != email]
        assert not [e for e in others if e in answer.text], f"{email}'s token saw {others}"
    assert stolen.status_code == 401 and "ana@example.com" not in stolen.text
