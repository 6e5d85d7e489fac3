"""The audit log: sign-ins, token issuance and revocation, admin actions and deletions are recorded with
who and when, and nothing secret ever lands in it."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager

from mcp import Client
from mcp.types import ToolAnnotations

from shine_mcp.auth import audit
from shine_mcp.auth.identity import identity_meta
from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services
from tests.auth.support import Browser
from tests.auth.test_mcp_oauth import _refresh, _register, _tokens

RunShine = Callable[[Settings], AbstractContextManager[str]]


async def test_the_audit_log_tells_the_story_without_secrets(
    run_shine: RunShine, shine_settings: Callable[..., Settings], browser: Browser, inspect_db
) -> None:
    settings = shine_settings(mcp_auth="required")
    with run_shine(settings) as base:
        client = await _register(browser.http, base)
        first = await _tokens(browser, base, client["client_id"])
        second = (await _refresh(browser.http, base, client["client_id"], first["refresh_token"])).json()
        await _refresh(browser.http, base, client["client_id"], first["refresh_token"])  # reuse
        third = await _tokens(browser, base, client["client_id"])  # a new grant (already signed in)
        await browser.http.post(
            f"{base}/revoke", data={"token": third["access_token"], "client_id": client["client_id"]}
        )
        session_cookie = browser.http.cookies.get("shine_session") or ""
        csrf_cookie = browser.http.cookies.get("shine_csrf") or ""
    db = await inspect_db(settings)
    events = list(reversed(await audit.events(db)))
    actions = [e.action for e in events]
    assert actions == [
        "client_registered",
        "sign_in",
        "consent_granted",
        "token_issued",
        "token_refreshed",
        "refresh_token_reused",
        "consent_granted",
        "token_issued",
        "token_revoked",
    ]
    user_id = events[1].actor_id
    assert user_id and all(e.actor_id == user_id for e in events[1:])
    assert all(e.client_id == client["client_id"] for e in events if e.action != "sign_in")
    assert events[1].ip == "127.0.0.1" and events[1].detail == {"method": "dev"}
    dumped = json.dumps([e.model_dump(mode="json") for e in events])
    secrets = [
        first["access_token"],
        first["refresh_token"],
        first["code"],
        first["verifier"],
        second["access_token"],
    ]
    secrets += [
        second["refresh_token"],
        third["access_token"],
        third["refresh_token"],
        session_cookie,
        csrf_cookie,
    ]
    assert all(s and s not in dumped for s in secrets)


async def test_a_secret_passed_to_the_audit_log_by_mistake_is_dropped(services: Services) -> None:
    async with services.running():
        await audit.record(services.db, "admin_action", actor_id="usr_x", tool="t", access_token="shine_at_x")
        (event,) = await audit.events(services.db)
    assert event.detail == {"tool": "t"}


async def test_admin_actions_and_deletions_through_tools_are_audited(
    settings: Settings, services: Services
) -> None:
    server = build_server(settings, services)

    @server.tool(annotations=ToolAnnotations(destructive_hint=True))
    async def delete_my_things() -> str:
        """Test tool: pretends to delete the caller's things."""
        return "deleted"

    admin = identity_meta("usr_root", settings, roles=("user", "admin"))
    async with Client(server) as client:
        await client.call_tool("delete_my_things", {}, meta=identity_meta("usr_ana", settings))
        await client.call_tool("admin_list_audit_events", {}, meta=admin)
        await client.call_tool("admin_list_audit_events", {}, meta=identity_meta("usr_ana", settings))
        events = list(reversed(await audit.events(services.db)))
    assert [(e.action, e.actor_id, e.detail) for e in events] == [
        ("data_deleted", "usr_ana", {"tool": "delete_my_things", "succeeded": True}),
        ("admin_action", "usr_root", {"tool": "admin_list_audit_events", "succeeded": True}),
    ]  # the refused non-admin call did not act, so there is nothing to audit
