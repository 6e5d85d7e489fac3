"""`current_user` on every transport: the web shell's signed in-process identity, the local user over
stdio and in-process, keyless loopback calls in a developer setup, and what a remote caller cannot fake."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from shine_mcp.auth.identity import IDENTITY_META_KEY, identity_meta, read_identity
from shine_mcp.auth.policy import dev_sign_in_available, mcp_auth_required
from shine_mcp.config import Settings
from tests.conftest import make_settings

RunShine = Callable[[Settings], AbstractContextManager[str]]


async def _account(
    client: Client, meta: dict[str, object] | None = None
) -> tuple[bool, dict[str, object] | str]:
    result = await client.call_tool("get_account", {}, meta=meta)
    if result.is_error:
        return True, result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return False, result.structured_content


async def test_in_process_calls_run_as_the_local_user_without_an_identity(
    server: MCPServer, settings: Settings
) -> None:
    async with Client(server) as client:
        error, account = await _account(client)
    assert not error and isinstance(account, dict)
    assert account["user_id"] == settings.local_user and account["via"] == "local"
    assert account["roles"] == ["user"]  # a shopper unless the operator opts in (SHINE_TOOLSETS)


async def test_a_signed_identity_makes_the_call_run_as_that_person(
    server: MCPServer, settings: Settings
) -> None:
    async with Client(server) as client:
        error, account = await _account(client, identity_meta("usr_ana", settings))
    assert not error and isinstance(account, dict)
    assert account["user_id"] == "usr_ana" and account["via"] == "web"
    assert account["roles"] == ["user"] and account["scopes"] == ["shine:read", "shine:shop"]


async def test_a_guest_identity_is_a_guest(server: MCPServer, settings: Settings) -> None:
    async with Client(server) as client:
        error, account = await _account(client, identity_meta("gst_0123abcd", settings))
    assert not error and isinstance(account, dict)
    assert account["user_id"] == "gst_0123abcd" and account["signed_in"] is False


def _altered(meta: dict[str, object], user_id: str) -> dict[str, object]:
    import base64

    body, signature = str(meta[IDENTITY_META_KEY]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = user_id
    forged = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return {IDENTITY_META_KEY: f"{forged.decode().rstrip('=')}.{signature}"}


@pytest.mark.parametrize(
    ("make_meta", "message"),
    [
        (lambda s: identity_meta("usr_ana", b"another server's key, long enough to be a key"), "not signed"),
        (lambda s: _altered(identity_meta("usr_ana", s), "usr_bob"), "not signed"),
        (lambda s: identity_meta("usr_ana", s, now=time.time() - 3600), "expired"),
        (lambda s: {IDENTITY_META_KEY: "garbage"}, "malformed"),
    ],
    ids=["other-key", "altered", "expired", "garbage"],
)
async def test_a_forged_or_stale_identity_is_refused(
    server: MCPServer, settings: Settings, make_meta: Callable[[Settings], dict[str, object]], message: str
) -> None:
    async with Client(server) as client:
        error, text = await _account(client, make_meta(settings))
    assert error and isinstance(text, str) and message in text


def test_the_identity_expires_after_its_ttl(settings: Settings) -> None:
    meta = identity_meta("usr_ana", settings, ttl=60, now=1000.0)
    assert read_identity(meta[IDENTITY_META_KEY], settings, now=1059.0) == ("usr_ana", frozenset({"user"}))
    with pytest.raises(ToolError, match="expired"):
        read_identity(meta[IDENTITY_META_KEY], settings, now=1061.0)


async def test_the_web_identity_carries_roles(server: MCPServer, settings: Settings) -> None:
    meta = identity_meta("usr_admin", settings, roles=("user", "admin"))
    async with Client(server) as client:
        error, account = await _account(client, meta)
        refused = await client.call_tool(
            "admin_list_audit_events", {}, meta=identity_meta("usr_ana", settings)
        )
        allowed = await client.call_tool("admin_list_audit_events", {}, meta=meta)
    assert (
        not error
        and isinstance(account, dict)
        and account["scopes"] == ["shine:admin", "shine:read", "shine:shop"]
    )
    assert refused.is_error and "for the shop's admins" in refused.content[0].text  # type: ignore[union-attr]
    assert not allowed.is_error


# --- over HTTP ----------------------------------------------------------------------------------------


async def test_keyless_loopback_setup_runs_remote_calls_as_the_local_user(
    run_shine: RunShine, shine_settings: Callable[..., Settings]
) -> None:
    settings = shine_settings()
    assert not mcp_auth_required(settings) and dev_sign_in_available(settings)
    with run_shine(settings) as base:
        async with Client(f"{base}/mcp") as client:
            forged = await client.call_tool("get_account", {}, meta=identity_meta("usr_ana", settings))
            plain = await client.call_tool("get_account", {})
    # A signed identity means nothing over HTTP, even a genuine one: only the transport decides.
    assert forged.structured_content == plain.structured_content
    assert plain.structured_content is not None
    assert plain.structured_content["user_id"] == "local" and plain.structured_content["via"] == "loopback"


async def test_a_request_relayed_by_a_proxy_is_not_treated_as_local(
    run_shine: RunShine, shine_settings: Callable[..., Settings]
) -> None:
    from tests.auth.test_mcp_oauth import _call_headers, _tools_call

    with run_shine(shine_settings()) as base:
        async with httpx.AsyncClient() as http:
            relayed = await http.post(
                f"{base}/mcp",
                headers={**_call_headers("get_account"), "X-Forwarded-For": "203.0.113.9"},
                content=_tools_call("get_account"),
            )
    result = relayed.json()["result"]
    assert result["isError"] is True and "sign in first" in result["content"][0]["text"]


@pytest.mark.parametrize(
    ("overrides", "protected"),
    [
        ({}, False),
        ({"mcp_auth": "required"}, True),
        ({"host": "0.0.0.0", "public_url": "https://shop.example"}, True),
        ({"public_url": "https://shine.example.com"}, True),
        ({"allowed_hosts": ["shine.example.com"]}, True),
        ({"google_client_id": "id", "google_client_secret": "secret"}, True),
    ],
    ids=["loopback", "required", "public-host", "public-url", "allowed-hosts", "google"],
)
def test_when_mcp_needs_a_token(tmp_path, overrides: dict[str, object], protected: bool) -> None:
    settings = make_settings(tmp_path, **overrides)
    assert mcp_auth_required(settings) is protected
    assert dev_sign_in_available(settings) is (not protected or overrides == {"mcp_auth": "required"})


def test_a_public_shine_without_https_refuses_to_start(tmp_path) -> None:
    from shine_mcp.services import Services
    from web_shell.app import create_app

    settings = make_settings(tmp_path, host="0.0.0.0")
    with pytest.raises(ValueError, match="SHINE_PUBLIC_URL"):
        create_app(settings, Services(settings))


def test_stdio_and_scripts_get_a_server_without_http_auth(server: MCPServer) -> None:
    assert server.settings.auth is None
