"""A remote MCP client's sign-in in a real browser: the person signs in and approves the client on Shine's
consent page in Chromium (real cookies, real Origin headers, the pages' CSP), then the client swaps the
code for tokens and calls a tool as that person. The httpx-driven OAuth tests cover the protocol; this one
covers what only a browser does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.advisor.web import shine_web
from tests.auth.mcp_client import REDIRECT_URI, ManualGrant
from tests.e2e.browser import (
    SIZES,
    axe_violations,
    new_context,
    playwright_api,
    shot,
    unreadable_controls,
)

pytestmark = pytest.mark.slow
MODERN = "2026-07-28"


@pytest.fixture
def protected_shop(settings: object, tmp_path: Path) -> Iterator[str]:
    with shine_web(tmp_path, mcp_auth="required") as (url, _):
        yield url


def _call_get_account(base: str, access_token: str) -> dict[str, object]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "get_account", "arguments": {}, "_meta": meta},
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "get_account",
        "Authorization": f"Bearer {access_token}",
    }
    response = httpx.post(f"{base}/mcp", headers=headers, content=json.dumps(body), timeout=30)
    assert response.status_code == 200, response.text
    text = response.text
    payload = (
        json.loads(text.split("data: ", 1)[1].splitlines()[0])
        if text.startswith("event:")
        else response.json()
    )
    return payload["result"]["structuredContent"]


@pytest.mark.parametrize("size", list(SIZES))
def test_a_person_approves_a_remote_mcp_client_in_a_real_browser(
    browser: object, protected_shop: str, size: str
) -> None:
    base = protected_shop
    registered = httpx.post(
        f"{base}/register",
        json={
            "client_name": "Claude (test)",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
        },
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    grant = ManualGrant(base, registered.json()["client_id"], state="st-1")

    context = new_context(browser, size)
    page = context.new_page()
    landed: list[str] = []

    def catch_callback(route: object) -> None:
        landed.append(route.request.url)  # type: ignore[attr-defined]
        route.fulfill(status=200, content_type="text/plain", body="You can close this tab.")  # type: ignore[attr-defined]

    page.route(REDIRECT_URI + "*", catch_callback)
    page.goto(grant.authorize_url())
    shot(page, f"{size}-sign-in")
    assert unreadable_controls(page) == [] and axe_violations(page) == []  # every impact, moderate too
    page.get_by_label("Email").fill("ines@example.com")  # the loopback dev sign-in
    page.get_by_role("button", name="Sign in").click()
    expect = playwright_api.expect
    expect(page.get_by_role("heading", name="Allow access to Shine?")).to_be_visible()
    expect(page.locator("body")).to_contain_text("Claude (test)")
    shot(page, f"{size}-oauth-consent")
    assert unreadable_controls(page) == [] and axe_violations(page) == []  # every impact, moderate too
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(REDIRECT_URI + "*")
    context.close()

    assert landed, "the browser never reached the client's redirect URI"
    tokens = httpx.post(f"{base}/token", data=grant.token_form(grant.code_from(landed[0])), timeout=30)
    assert tokens.status_code == 200, tokens.text
    account = _call_get_account(base, tokens.json()["access_token"])
    assert account["email"] == "ines@example.com" and account["via"] == "oauth"
