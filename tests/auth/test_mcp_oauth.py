"""`/mcp` as an OAuth 2.1 protected resource with Shine as its authorization server, driven by the MCP SDK's
own `OAuthClientProvider`: discovery, registration, authorization with consent, tokens, tool calls; then
refresh, rotation, reuse detection, revocation and expiry, and the refusals around them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
import pytest
from mcp.client.auth import OAuthFlowError
from sqlalchemy import select

from shine_mcp.auth import audit
from shine_mcp.config import Settings
from shine_mcp.store.stream_events import StreamEvent
from shine_mcp.store.users import OAuthClient, OAuthToken
from tests.auth.mcp_client import REDIRECT_URI, ManualGrant, RemoteClient
from tests.auth.support import Browser, Clock

RunShine = Callable[[Settings], AbstractContextManager[str]]
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@pytest.fixture
def oauth_settings(shine_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """A loopback Shine that protects `/mcp` anyway; the dev sign-in does the human part."""

    def build(**overrides: object) -> Settings:
        return shine_settings(mcp_auth="required", **overrides)

    return build


MODERN = "2026-07-28"  # one request, no session: what a raw call needs


def _tools_call(name: str, arguments: dict[str, object] | None = None) -> str:
    envelope = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    params = {"name": name, "arguments": arguments or {}, "_meta": envelope}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})


def _call_headers(tool: str, access_token: str | None = None) -> dict[str, str]:
    headers = {**MCP_HEADERS, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": tool}
    if access_token:
        headers["Authorization"] = f"Bearer {access_token}"
    return headers


async def _register(http: httpx.AsyncClient, base: str, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    response = await http.post(
        f"{base}/register",
        json={"client_name": "raw", "redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _tokens(
    browser: Browser, base: str, client_id: str, scope: str = "shine:read shine:shop"
) -> dict[str, str]:
    """The authorization-code flow by hand, for tests that need the raw tokens."""
    grant = ManualGrant(base, client_id, scope=scope)
    landed = await browser.go(grant.authorize_url(), stop_at=lambda u: u.startswith(REDIRECT_URI))
    assert isinstance(landed, str), landed
    code = grant.code_from(landed)
    response = await browser.http.post(f"{base}/token", data=grant.token_form(code))
    assert response.status_code == 200, response.text
    return {**response.json(), "code": code, "verifier": grant.verifier}


async def _refresh(http: httpx.AsyncClient, base: str, client_id: str, refresh_token: str) -> httpx.Response:
    return await http.post(
        f"{base}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
    )


async def _call(
    http: httpx.AsyncClient, base: str, access_token: str, tool: str = "get_account"
) -> httpx.Response:
    return await http.post(
        f"{base}/mcp", headers=_call_headers(tool, access_token), content=_tools_call(tool)
    )


# --- the whole flow with the SDK's client -------------------------------------------------------------


async def test_remote_client_registers_signs_in_and_calls_tools_as_the_person(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser, inspect_db
) -> None:
    settings = oauth_settings()
    remote = None
    with run_shine(settings) as base:
        remote = RemoteClient(base, browser)
        async with remote.connect() as client:
            account = await client.call_tool("get_account", {})
            tools = {tool.name for tool in (await client.list_tools()).tools}
    assert not account.is_error, account.content
    assert account.structured_content is not None
    assert account.structured_content["email"] == "ana@example.com"
    assert account.structured_content["via"] == "oauth"
    assert account.structured_content["scopes"] == ["shine:read", "shine:shop"]
    assert {"get_account", "search_products", "get_product"} <= tools
    # Discovery → registration → authorization (sign-in, consent) → token, in that order.
    visited = browser.visited
    assert "/authorize?" in visited[0]
    assert any("/auth/dev" in u for u in visited) and any("/auth/consent" in u for u in visited)
    assert remote.storage.client_info is not None and remote.storage.tokens is not None
    assert remote.storage.tokens.refresh_token and remote.storage.tokens.expires_in == 900
    db = await inspect_db(settings)
    actions = [e.action for e in reversed(await audit.events(db))]
    assert actions[:4] == ["client_registered", "sign_in", "consent_granted", "token_issued"]


async def test_what_a_2025_session_was_sent_names_the_person_its_token_is_for(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser, inspect_db
) -> None:
    """Streamable HTTP keeps the messages of a 2025-11-25 session's streams so a dropped one can resume; each
    names the token's person, so erasing that person erases them (tests/advice/test_erasure.py)."""
    settings = oauth_settings()
    with run_shine(settings) as base:
        async with RemoteClient(base, browser).connect(mode="legacy") as client:
            account = await client.call_tool("get_account", {})
    assert account.structured_content is not None
    db = await inspect_db(settings)
    owners = await db.read(lambda c: c.execute(select(StreamEvent.user_id)).scalars().all())
    assert owners and set(owners) == {account.structured_content["user_id"]}


async def test_the_consent_page_names_the_client_and_denying_tells_it(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser
) -> None:
    browser.decision = "deny"
    with run_shine(oauth_settings()) as base:
        remote = RemoteClient(base, browser, client_name="Curious <b>Client</b>")
        refused = pytest.RaisesGroup(
            pytest.RaisesExc(OAuthFlowError, match="access_denied"), flatten_subgroups=True
        )
        with refused:
            async with remote.connect() as client:
                await client.call_tool("get_account", {})
        consent = next(u for u in browser.visited if "/auth/consent?" in u)
        page = await browser.http.get(consent)
    assert page.status_code == 400  # answered once: the request is gone
    assert remote.redirects and "scope=shine%3Aread+shine%3Ashop" in remote.redirects[0]


async def test_consent_page_escapes_the_client_name(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser
) -> None:
    with run_shine(oauth_settings()) as base:
        async with httpx.AsyncClient() as http:
            registered = (
                await http.post(
                    f"{base}/register",
                    json={
                        "client_name": "<script>x</script>",
                        "redirect_uris": [REDIRECT_URI],
                        "token_endpoint_auth_method": "none",
                    },
                )
            ).json()
        browser.decision = None
        from urllib.parse import urlencode

        query = urlencode(
            {
                "response_type": "code",
                "client_id": registered["client_id"],
                "redirect_uri": REDIRECT_URI,
                "code_challenge": "x" * 43,
                "code_challenge_method": "S256",
                "state": "s",
            }
        )
        page = await browser.go(f"{base}/authorize?{query}")
    assert isinstance(page, httpx.Response) and page.status_code == 200
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert "registered itself" in page.text
    assert page.headers["x-frame-options"] == "DENY"


# --- discovery ---------------------------------------------------------------------------------------


async def test_unauthenticated_mcp_calls_get_401_pointing_at_the_metadata(
    run_shine: RunShine, oauth_settings: Callable[..., Settings]
) -> None:
    async with httpx.AsyncClient() as http:
        with run_shine(oauth_settings()) as base:
            response = await http.post(
                f"{base}/mcp", headers=_call_headers("get_account"), content=_tools_call("get_account")
            )
            prm_path = (await http.get(f"{base}/.well-known/oauth-protected-resource/mcp")).json()
            prm_root = (await http.get(f"{base}/.well-known/oauth-protected-resource")).json()
            asm = (await http.get(f"{base}/.well-known/oauth-authorization-server")).json()
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in challenge
    assert 'scope="shine:read shine:shop"' in challenge
    assert prm_path == prm_root
    assert prm_path["resource"] == f"{base}/mcp" and prm_path["authorization_servers"] == [base]
    assert prm_path["scopes_supported"] == ["shine:read", "shine:shop", "shine:admin"]
    assert asm["issuer"] == base
    assert asm["code_challenge_methods_supported"] == ["S256"]
    assert asm["client_id_metadata_document_supported"] is True
    assert asm["authorization_response_iss_parameter_supported"] is True
    assert (
        asm["registration_endpoint"] == f"{base}/register" and asm["revocation_endpoint"] == f"{base}/revoke"
    )


# --- tokens -------------------------------------------------------------------------------------------


async def test_access_tokens_expire_after_fifteen_minutes(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser, clock: Clock
) -> None:
    with run_shine(oauth_settings()) as base:
        client = await _register(browser.http, base)
        tokens = await _tokens(browser, base, client["client_id"])
        fresh = await _call(browser.http, base, tokens["access_token"])
        clock.advance(minutes=14)
        still = await _call(browser.http, base, tokens["access_token"])
        clock.advance(minutes=2)
        expired = await _call(browser.http, base, tokens["access_token"])
    assert fresh.status_code == 200 and still.status_code == 200
    assert fresh.json()["result"]["structuredContent"]["email"] == "ana@example.com"
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser, inspect_db
) -> None:
    settings = oauth_settings()
    with run_shine(settings) as base:
        client_id = (await _register(browser.http, base))["client_id"]
        first = await _tokens(browser, base, client_id)
        rotated = await _refresh(browser.http, base, client_id, first["refresh_token"])
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        assert (await _call(browser.http, base, second["access_token"])).status_code == 200
        # The first refresh token shows up again: it leaked. Everything from this sign-in dies.
        reused = await _refresh(browser.http, base, client_id, first["refresh_token"])
        after_new_access = await _call(browser.http, base, second["access_token"])
        after_new_refresh = await _refresh(browser.http, base, client_id, second["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert after_new_access.status_code == 401
    assert after_new_refresh.status_code == 400
    db = await inspect_db(settings)
    assert len(await audit.events(db, action="refresh_token_reused")) == 1


async def test_the_sdk_client_refreshes_an_expired_token_by_itself(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser, clock: Clock
) -> None:
    with run_shine(oauth_settings()) as base:
        remote = RemoteClient(base, browser)
        provider = remote.provider()
        async with remote.connect(provider) as client:
            assert not (await client.call_tool("get_account", {})).is_error
            first = remote.storage.tokens
            clock.advance(minutes=16)
            provider.context.token_expiry_time = time.time() - 1  # the client's own clock agrees it expired
            again = await client.call_tool("get_account", {})
    assert not again.is_error
    assert remote.storage.tokens is not None and first is not None
    assert remote.storage.tokens.refresh_token != first.refresh_token
    assert sum("/authorize?" in u for u in browser.visited) == 1  # no second sign-in


async def test_refresh_tokens_end_after_thirty_days(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser, clock: Clock
) -> None:
    with run_shine(oauth_settings()) as base:
        client_id = (await _register(browser.http, base))["client_id"]
        tokens = await _tokens(browser, base, client_id)
        clock.advance(days=31)
        late = await _refresh(browser.http, base, client_id, tokens["refresh_token"])
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


async def test_revoking_a_token_ends_its_whole_grant(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser, inspect_db
) -> None:
    settings = oauth_settings()
    with run_shine(settings) as base:
        client_id = (await _register(browser.http, base))["client_id"]
        tokens = await _tokens(browser, base, client_id)
        revoked = await browser.http.post(
            f"{base}/revoke", data={"token": tokens["access_token"], "client_id": client_id}
        )
        call = await _call(browser.http, base, tokens["access_token"])
        refresh = await _refresh(browser.http, base, client_id, tokens["refresh_token"])
    assert revoked.status_code == 200
    assert call.status_code == 401 and refresh.status_code == 400
    db = await inspect_db(settings)
    assert [e.action for e in await audit.events(db, action="token_revoked")] == ["token_revoked"]


async def test_an_authorization_code_works_once_and_a_replay_revokes_its_tokens(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser
) -> None:
    with run_shine(oauth_settings()) as base:
        client_id = (await _register(browser.http, base))["client_id"]
        tokens = await _tokens(browser, base, client_id)
        replay = await browser.http.post(
            f"{base}/token",
            data={
                "grant_type": "authorization_code",
                "code": tokens["code"],
                "redirect_uri": REDIRECT_URI,
                "client_id": client_id,
                "code_verifier": tokens["verifier"],
            },
        )
        call = await _call(browser.http, base, tokens["access_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert call.status_code == 401


async def test_tokens_are_stored_only_as_hashes(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser, inspect_db, data_dir
) -> None:
    settings = oauth_settings()
    with run_shine(settings) as base:
        async with httpx.AsyncClient() as http:
            confidential = (
                await http.post(
                    f"{base}/register", json={"client_name": "secretive", "redirect_uris": [REDIRECT_URI]}
                )
            ).json()
        client_id = (await _register(browser.http, base))["client_id"]
        tokens = await _tokens(browser, base, client_id)
    db = await inspect_db(settings)
    async with db.session() as session:
        rows = list((await session.execute(select(OAuthToken))).scalars())
        stored_client = await session.get(OAuthClient, confidential["client_id"])
    assert {r.kind for r in rows} == {"access", "refresh"}
    everything = b"".join(p.read_bytes() for p in data_dir.glob("shine.db*"))
    for secret in (
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["code"],
        confidential["client_secret"],
    ):
        assert secret.encode() not in everything
    assert stored_client is not None and stored_client.secret_encrypted


# --- refusals at /authorize, /register and /token ---------------------------------------------------------


async def test_authorize_requires_pkce_with_s256(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser
) -> None:
    from urllib.parse import parse_qs, urlencode, urlsplit

    with run_shine(oauth_settings()) as base:
        client_id = (await _register(browser.http, base))["client_id"]
        base_query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "state": "s",
        }
        without = await browser.http.get(f"{base}/authorize?{urlencode(base_query)}")
        plain = await browser.http.get(
            f"{base}/authorize?{urlencode({**base_query, 'code_challenge': 'a' * 43, 'code_challenge_method': 'plain'})}"
        )
    for response in (without, plain):
        assert response.status_code == 302
        assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["invalid_request"]


async def test_authorize_refuses_tokens_for_another_resource(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser
) -> None:
    from urllib.parse import parse_qs, urlencode, urlsplit

    with run_shine(oauth_settings()) as base:
        client_id = (await _register(browser.http, base))["client_id"]
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "state": "s",
            "code_challenge": "a" * 43,
            "resource": "https://other.example/mcp",
        }
        response = await browser.http.get(f"{base}/authorize?{urlencode(query)}")
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["invalid_target"]


async def test_an_unregistered_redirect_uri_is_never_redirected_to(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser
) -> None:
    from urllib.parse import urlencode

    with run_shine(oauth_settings()) as base:
        client_id = (await _register(browser.http, base))["client_id"]
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI + "/../evil",
            "state": "s",
            "code_challenge": "a" * 43,
        }
        response = await browser.http.get(f"{base}/authorize?{urlencode(query)}")
    assert response.status_code == 400 and "location" not in response.headers


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://evil.example/callback", "javascript:alert(1)", "https://app.example/cb#fragment"],
)
async def test_registration_refuses_unsafe_redirect_uris(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], redirect_uri: str
) -> None:
    async with httpx.AsyncClient() as http:
        with run_shine(oauth_settings()) as base:
            response = await http.post(
                f"{base}/register", json={"client_name": "x", "redirect_uris": [redirect_uri]}
            )
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")


async def test_tokens_from_another_client_cannot_be_refreshed_by_this_one(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser
) -> None:
    with run_shine(oauth_settings()) as base:
        first = (await _register(browser.http, base))["client_id"]
        second = (await _register(browser.http, base))["client_id"]
        tokens = await _tokens(browser, base, first)
        stolen = await _refresh(browser.http, base, second, tokens["refresh_token"])
        still_fine = await _refresh(browser.http, base, first, tokens["refresh_token"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert still_fine.status_code == 200


# --- scopes and roles ------------------------------------------------------------------------------------


async def test_an_admin_steps_up_to_the_admin_scope_when_a_tool_needs_it(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser
) -> None:
    with run_shine(oauth_settings(admin_emails=["ana@example.com"])) as base:
        client_id = (await _register(browser.http, base))["client_id"]
        tokens = await _tokens(browser, base, client_id, scope="shine:read shine:shop")
        refused = await _call(browser.http, base, tokens["access_token"], tool="admin_list_audit_events")
        remote = RemoteClient(base, browser)
        async with remote.connect() as client:
            audit_page = await client.call_tool("admin_list_audit_events", {"limit": 5})
    assert refused.status_code == 403
    challenge = refused.headers["www-authenticate"]
    assert (
        'error="insufficient_scope"' in challenge and 'scope="shine:read shine:shop shine:admin"' in challenge
    )
    assert not audit_page.is_error, audit_page.content
    assert remote.storage.tokens is not None and "shine:admin" in (remote.storage.tokens.scope or "")
    assert sum("/authorize?" in u for u in browser.visited) >= 3  # first grant, then the step-up


async def test_a_non_admin_is_refused_admin_tools_with_a_clear_message(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser
) -> None:
    with run_shine(oauth_settings()) as base:
        remote = RemoteClient(base, browser)
        async with remote.connect() as client:
            result = await client.call_tool("admin_list_audit_events", {})
    assert result.is_error
    assert "for the shop's admins" in result.content[0].text  # type: ignore[union-attr]
    assert remote.storage.tokens is not None and "shine:admin" not in (remote.storage.tokens.scope or "")


async def test_the_shop_tools_are_listed_to_an_admin_who_granted_the_admin_scope_only(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser
) -> None:
    shop_tools = {"refund_order", "sales_report", "admin_import_product_page", "admin_list_audit_events"}
    with run_shine(oauth_settings(admin_emails=["ana@example.com"])) as base:
        async with RemoteClient(base, browser).connect() as client:
            before = {t.name for t in (await client.list_tools()).tools}
            stepped_up = await client.call_tool("admin_list_audit_events", {"limit": 1})
            after = {t.name for t in (await client.list_tools(cache_mode="bypass")).tools}
    assert "search_products" in before and not before & shop_tools  # the first grant: shine:read shine:shop
    assert not stepped_up.is_error
    assert shop_tools <= after


async def test_a_shoppers_client_is_not_listed_the_shop_tools(
    run_shine: RunShine, oauth_settings: Callable[..., Settings], browser: Browser
) -> None:
    with run_shine(oauth_settings()) as base:
        async with RemoteClient(base, browser).connect() as client:
            names = {t.name for t in (await client.list_tools()).tools}
    shop_tools = {"refund_order", "sales_report", "admin_import_product_page", "admin_list_audit_events"}
    assert "search_products" in names and "close_my_account" in names and not names & shop_tools


@pytest.mark.postgres
async def test_the_whole_grant_lifecycle_works_on_postgresql(
    run_shine: RunShine,
    oauth_settings: Callable[..., Settings],
    browser: Browser,
    postgres_url: str,
    clock: Clock,
) -> None:
    """Several Shine processes share PostgreSQL: codes, rotation, reuse detection and revocation must hold there too."""
    settings = oauth_settings().model_copy(update={"database_url": postgres_url})
    with run_shine(settings) as base:
        client_id = (await _register(browser.http, base))["client_id"]
        first = await _tokens(browser, base, client_id)
        assert (await _call(browser.http, base, first["access_token"])).status_code == 200
        second = (await _refresh(browser.http, base, client_id, first["refresh_token"])).json()
        reused = await _refresh(browser.http, base, client_id, first["refresh_token"])
        after = await _call(browser.http, base, second["access_token"])
        clock.advance(minutes=16)
        third = await _tokens(browser, base, client_id)
        revoked = await browser.http.post(
            f"{base}/revoke", data={"token": third["refresh_token"], "client_id": client_id}
        )
        dead = await _call(browser.http, base, third["access_token"])
    assert reused.status_code == 400 and after.status_code == 401
    assert revoked.status_code == 200 and dead.status_code == 401
