"""Signing in from the widget on a shop's own site, in Chromium with third-party cookies blocked: a demo
shop page on one origin (`http://localhost:P`) embeds the widget from Shine on another (`http://127.0.0.1:Q`).
The shopper signs in through the popup (the loopback dev sign-in), is signed in in the widget (their guest
chat with them), stays signed in across a reload of the tab, and signs out. A page on a third origin can
neither obtain the token nor use it; a forged `postMessage` and a replayed code are refused. When the
browser blocks the popup, the widget says so and offers a button; a popup closed early leaves a guest."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from shine_mcp.auth.accounts import upsert_user
from shine_mcp.auth.identity import identity_meta
from shine_mcp.clock import utcnow
from shine_mcp.integrations.google import VerifiedPerson
from shine_mcp.server import build_server
from shine_mcp.services import Services
from tests.advisor.web import shine_web
from tests.conftest import make_settings
from tests.e2e.browser import (
    ARGS,
    CHROMIUM,
    axe_violations,
    new_context,
    playwright_api,
    shot,
    unreadable_controls,
)
from tests.support.asgi import serve_asgi
from tests.support.postgres import free_port

pytestmark = pytest.mark.slow
expect = playwright_api.expect
# Chromium's switch that blocks third-party cookies the way Safari and Firefox already do.
NO_THIRD_PARTY_COOKIES = "--test-third-party-cookie-phaseout"
BLOCK_POPUPS = "window.__open = window.open; window.open = function () { return null; };"
SERUM = "prd_b559697ee63c"  # in the demo catalog
ANAS_PROFILE = {"skin_type": "combination", "concerns": ["dark_spots"], "avoid_ingredients": ["lanolin"]}


def an_order_for_ana(data_dir: Path) -> str:
    """Ana already has an account with a saved skin profile and an order (both from another device): the
    order's id."""

    async def place() -> str:
        settings = make_settings(data_dir)
        services = Services(settings)
        async with services.running():
            ana = await upsert_user(
                services.db, VerifiedPerson(email="ana@example.com", email_verified=True), now=utcnow()
            )
            meta = identity_meta(ana.id, settings, roles=("user",))
            async with Client(build_server(settings, services)) as client:
                await client.call_tool("update_profile", ANAS_PROFILE, meta=meta)  # type: ignore[arg-type]
                await client.call_tool("add_to_cart", {"product_id": SERUM, "quantity": 1}, meta=meta)  # type: ignore[arg-type]
                checkout = await client.call_tool("checkout", {}, meta=meta)  # type: ignore[arg-type]
        assert checkout.structured_content is not None, checkout
        return str(checkout.structured_content["order"]["order_id"])

    with ThreadPoolExecutor(1) as pool:  # its own event loop, away from Playwright's
        return pool.submit(asyncio.run, place()).result()


def shop_app(shine: str) -> Starlette:
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Glow shop</title></head>'
            "<body><main><h1>Glow shop</h1><p>Serums and creams.</p></main>"
            f'<script src="{shine}/widget.js" defer></script></body></html>'
        )

    async def stranger(request: Request) -> HTMLResponse:
        return HTMLResponse(
            '<!doctype html><html lang="en"><head><title>Another site</title></head>'
            "<body><main><h1>Another site</h1></main></body></html>"
        )

    return Starlette(routes=[Route("/", page), Route("/stranger", stranger)])


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=[*ARGS, NO_THIRD_PARTY_COOKIES])
        yield launched
        launched.close()


@pytest.fixture
def sites(settings: object, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(the shop's origin, Shine's origin, a third origin): three loopback ports, two host names."""
    shop_port, stranger_port = free_port(), free_port()
    shop = f"http://localhost:{shop_port}"
    with shine_web(tmp_path, allowed_origins=[shop], rate_limit_auth=0) as (shine, _):
        app = shop_app(shine)
        with serve_asgi(app, shop_port), serve_asgi(app, stranger_port):
            yield shop, shine, f"http://localhost:{stranger_port}"


def open_widget(page: object) -> object:
    page.get_by_role("button", name="Skin advisor").click()  # type: ignore[attr-defined]
    dialog = page.get_by_role("dialog", name="Shine skincare advisor")  # type: ignore[attr-defined]
    expect(dialog).to_be_visible()
    return dialog


def your_data(page: object) -> object:
    page.get_by_role("button", name="Your data").click()  # type: ignore[attr-defined]
    card = page.get_by_role("article", name="Your data")  # type: ignore[attr-defined]
    expect(card).to_be_visible()
    return card


def ask(page: object, message: str) -> None:
    box = page.get_by_role("textbox", name="Message")  # type: ignore[attr-defined]
    box.fill(message)
    box.press("Enter")
    expect(page.get_by_role("button", name="Send")).to_be_enabled(timeout=30_000)  # type: ignore[attr-defined]


def sign_in_in_popup(page: object, card: object) -> object:
    with page.expect_popup() as opened:  # type: ignore[attr-defined]
        card.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    popup = opened.value
    popup.get_by_label("Email").fill("ana@example.com")
    with popup.expect_event("close"):
        popup.get_by_role("button", name="Sign in").click()
    return popup


def test_a_shopper_signs_in_from_the_shops_own_site_through_a_popup(
    browser: object, sites: tuple[str, str, str], tmp_path: Path
) -> None:
    shop, shine, stranger = sites
    order_id = an_order_for_ana(tmp_path)
    context = new_context(browser, "desktop")
    page = context.new_page()
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    exchanges: list[dict[str, str]] = []
    page.on(
        "request",
        lambda r: (
            exchanges.append(json.loads(r.post_data or "{}"))
            if r.url.endswith("/auth/widget/token")
            else None
        ),
    )
    page.goto(shop)
    open_widget(page)
    ask(page, "hello, I have dry skin")
    card = your_data(page)
    expect(card).to_contain_text("You are chatting as a guest")
    shot(page, "widget-sign-in-guest")
    assert unreadable_controls(page) == [] and axe_violations(page) == []

    sign_in_in_popup(page, card)
    log = page.get_by_role("log", name="Conversation")
    expect(log).to_contain_text("You're signed in as ana@example.com")
    expect(log).to_contain_text("hello, I have dry skin")  # the guest's chat came along
    ask(page, "show my orders")  # answered as the account, with the order placed elsewhere
    expect(log).to_contain_text(order_id)
    ask(page, "show my profile")  # the profile saved for the account, in the shopper's words
    expect(log).to_contain_text("Skin type: combination")
    expect(log).to_contain_text("Concerns: dark spots")
    expect(log).to_contain_text("lanolin")
    expect(your_data(page)).to_contain_text("Signed in as ana@example.com")
    shot(page, "widget-sign-in-signed-in")
    assert unreadable_controls(page) == [] and axe_violations(page) == []

    # The token sits in this tab's sessionStorage only: no cookie, no localStorage.
    stored = page.evaluate("() => JSON.stringify([sessionStorage, localStorage, document.cookie])")
    session_store, local_store, cookies = json.loads(stored)
    (token,) = [v for k, v in session_store.items() if k.startswith("shine-widget-token:")]
    assert token not in json.dumps(local_store) and token not in cookies
    # Third-party cookies are blocked: Shine's own session cookie (set in the popup) never reaches it here.
    unaided = page.evaluate(
        "async (base) => (await (await fetch(base + '/api/chat', {credentials: 'include'})).json()).signed_in",
        shine,
    )
    assert unaided is False

    # After a reload, "Your data" opened while the chat is still loading waits to know who is signed in.
    held: list[Any] = []
    chat_url = f"{shine}/api/chat"
    page.route(
        chat_url, lambda route: held.append(route) if route.request.method == "GET" else route.continue_()
    )
    page.reload()
    open_widget(page)
    page.get_by_role("button", name="Your data").click()
    for _ in range(200):  # bounded: the widget asks for the chat as soon as it opens
        if held:
            break
        page.wait_for_timeout(25)
    assert held, "the widget did not load its chat"
    held[0].continue_()
    page.unroute(chat_url)
    expect(page.get_by_role("article", name="Your data")).to_contain_text("Signed in as ana@example.com")

    # A page on a third origin can neither use the token nor get a code, even with Shine's cookie.
    other = context.new_page()
    other.goto(f"{stranger}/stranger")
    used = other.evaluate(
        """async ([base, token]) => {
          try { const r = await fetch(base + '/api/my-data', {headers: {Authorization: 'Bearer ' + token}});
                return 'read ' + r.status; } catch (e) { return 'refused'; } }""",
        [shine, token],
    )
    assert used == "refused"
    assert (
        httpx.get(
            f"{shine}/api/my-data", headers={"Authorization": f"Bearer {token}", "Origin": stranger}
        ).status_code
        == 401
    )
    other.evaluate("() => { window.got = []; addEventListener('message', (e) => window.got.push(e.data)); }")
    start = f"{shine}/auth/widget/start?origin={shop}&challenge={'A' * 43}&state=stolen-state-0001"
    with other.expect_popup() as opened:
        other.evaluate("(url) => { window.open(url, 'steal', 'popup'); }", start)
    opened.value.wait_for_event("close")  # Shine handed its code to the shop's origin, which this is not
    assert other.evaluate("() => new Promise((done) => setTimeout(() => done(window.got), 0))") == []
    refused = httpx.get(start.replace(f"origin={shop}", f"origin={stranger}"))
    assert refused.status_code == 400 and "handoff" not in refused.text

    # A forged message on the shop's page is ignored (and said so in the console); no code is traded.
    traded = len(exchanges)
    with page.expect_console_message(lambda m: "ignored a sign-in message" in m.text):
        page.evaluate("() => window.postMessage({type: 'shine:signed-in', code: 'forged', state: 'x'}, '*')")
    assert len(exchanges) == traded

    # Signing out ends the token; the widget is a guest again.
    card = your_data(page)
    card.get_by_role("button", name="Sign out").click()
    expect(log).to_contain_text("You're signed out")
    expect(your_data(page)).to_contain_text("You are chatting as a guest")
    assert (
        httpx.get(
            f"{shine}/api/chat", headers={"Authorization": f"Bearer {token}", "Origin": shop}
        ).status_code
        == 401
    )

    # The code the popup handed over, presented again from the shop's own page: refused.
    (first,) = exchanges
    replayed = page.evaluate(
        """async ([base, body]) => { const r = await fetch(base + '/auth/widget/token', {method: 'POST',
             headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
           return [r.status, (await r.json()).error]; }""",
        [shine, first],
    )
    assert replayed == [400, "reused_code"]
    context.close()


def test_a_blocked_popup_gets_a_button_and_a_closed_one_leaves_a_guest(
    browser: object, sites: tuple[str, str, str]
) -> None:
    shop, _, _ = sites
    context = new_context(browser, "desktop")
    context.add_init_script(BLOCK_POPUPS)
    page = context.new_page()
    page.goto(shop)
    open_widget(page)
    card = your_data(page)
    card.get_by_role("button", name="Sign in").click()
    expect(card).to_contain_text("Your browser blocked the sign-in window")
    retry = card.get_by_role("button", name="Open the sign-in window")
    expect(retry).to_be_focused()
    shot(page, "widget-sign-in-popup-blocked")
    assert unreadable_controls(page) == [] and axe_violations(page) == []

    page.evaluate("() => { window.open = window.__open; }")  # the shopper allowed pop-ups for the shop
    with page.expect_popup() as opened:
        retry.click()
    opened.value.close()
    expect(card).to_contain_text("Sign-in was not finished. You are still chatting as a guest.")
    expect(card.get_by_role("button", name="Sign in")).to_be_visible()
    context.close()
