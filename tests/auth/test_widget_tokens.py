"""Widget sign-in on a shop's own site, over HTTP against a served Shine: the popup hands a single-use code,
the widget trades it (with its verifier) for a token bound to the shop's origin. Wrong verifiers, replayed
or expired codes, other origins and stolen tokens get nothing; the guest's chat follows them in; signing
out (here or everywhere) ends the token. The browser flow itself is in tests/e2e/test_widget_sign_in.py."""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from shine_mcp.auth.widget_tokens import challenge_of, exchange_code, issue_code
from shine_mcp.clock import aware, utcnow
from shine_mcp.config import Settings
from shine_mcp.store.db import open_database
from shine_mcp.store.purge import purge_expired
from shine_mcp.store.users import WidgetToken
from tests.advisor.web import post_chat
from tests.auth.support import Browser, Clock, forms_of
from tests.auth.widget import (
    OTHER_SHOP,
    SHOP,
    STRANGER,
    Popup,
    api,
    exchange,
    signed_in_token,
)


@pytest.fixture
async def shine(
    shine_settings: Callable[..., Settings], run_shine: Callable[[Settings], AbstractContextManager[str]]
) -> AsyncIterator[str]:
    with run_shine(shine_settings(allowed_origins=[SHOP, OTHER_SHOP], rate_limit_auth=0)) as url:
        yield url


async def test_the_popup_code_buys_a_token_that_works_from_its_shop_only(
    shine: str, browser: Browser
) -> None:
    popup = Popup(shine, browser)
    response = await exchange(shine, await popup.code(), popup.verifier)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == SHOP
    body = response.json()
    assert body["account"]["email"] == "ana@example.com"
    token = body["token"]

    mine = await api(shine, token)
    assert mine.status_code == 200 and mine.json()["signed_in"] is True
    assert mine.json()["account"]["email"] == "ana@example.com"
    # Stolen: from another page, even another allowed shop, or from no page at all, it is worth nothing.
    for origin in (STRANGER, OTHER_SHOP, None):
        refused = await api(shine, token, origin)
        assert refused.status_code == 401, origin
        assert "ana@example.com" not in refused.text
    assert "access-control-allow-origin" not in (await api(shine, token, STRANGER)).headers


async def test_a_wrong_verifier_gets_nothing_and_burns_the_code(shine: str, browser: Browser) -> None:
    popup = Popup(shine, browser)
    code = await popup.code()
    wrong = await exchange(shine, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "wrong_verifier"
    again = await exchange(shine, code, popup.verifier)  # the code cannot be tried twice
    assert again.status_code == 400 and again.json()["error"] == "reused_code"


async def test_a_replayed_code_is_refused_and_ends_the_token_it_bought(
    shine: str, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    popup = Popup(shine, browser)
    code = await popup.code()
    first = await exchange(shine, code, popup.verifier)
    token = first.json()["token"]
    replay = await exchange(shine, code, popup.verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "reused_code"
    assert "token" not in replay.json()
    assert (await api(shine, token)).status_code == 401  # someone else had the code: end what it bought
    assert "presented again" in caplog.text  # and the shop's operator can see it happened


async def test_an_expired_code_is_refused(shine: str, browser: Browser, clock: Clock) -> None:
    popup = Popup(shine, browser)
    code = await popup.code()
    clock.advance(minutes=3)
    late = await exchange(shine, code, popup.verifier)
    assert late.status_code == 400 and late.json()["error"] == "expired_code"


async def test_a_code_for_one_shop_is_refused_on_another(shine: str, browser: Browser) -> None:
    popup = Popup(shine, browser)
    code = await popup.code()
    elsewhere = await exchange(shine, code, popup.verifier, OTHER_SHOP)
    assert elsewhere.status_code == 400 and elsewhere.json()["error"] == "wrong_origin"
    stranger = await exchange(shine, await Popup(shine, browser).code(), popup.verifier, STRANGER)
    assert stranger.status_code == 403 and "access-control-allow-origin" not in stranger.headers


async def test_the_popup_hands_nothing_to_a_page_not_allowed(shine: str, browser: Browser) -> None:
    popup = Popup(shine, browser)
    page = await browser.go(popup.url(origin=STRANGER))
    assert isinstance(page, httpx.Response) and page.status_code == 400
    assert "handoff" not in page.text and "Signing in works from the shop's own pages" in html.unescape(
        page.text
    )


async def test_the_guests_chat_follows_them_into_the_account(shine: str, browser: Browser) -> None:
    with httpx.Client(base_url=shine, timeout=30, headers={"Origin": SHOP}) as guest:
        response, events = post_chat(guest, {"message": "hello, I have dry skin"})
        assert response.status_code == 200 and events[-1].event == "done"
        chat_token = response.headers["x-shine-chat"]
    popup = Popup(shine, browser)
    exchanged = await exchange(shine, await popup.code(), popup.verifier, **{"X-Shine-Chat": chat_token})
    token = exchanged.json()["token"]
    async with httpx.AsyncClient(timeout=30) as http:
        history = await http.get(
            f"{shine}/api/chat",
            headers={"Authorization": f"Bearer {token}", "Origin": SHOP, "X-Shine-Chat": chat_token},
        )
    assert history.json()["signed_in"] is True
    assert "hello, I have dry skin" in json.dumps(history.json()["messages"])
    # The guest is gone: the chat token alone no longer reads the (now the account's) conversation.
    async with httpx.AsyncClient(timeout=30) as http:
        alone = await http.get(f"{shine}/api/chat", headers={"Origin": SHOP, "X-Shine-Chat": chat_token})
    assert alone.json()["messages"] == [] and alone.json()["signed_in"] is False


async def test_signing_out_in_the_widget_ends_its_token(shine: str, browser: Browser) -> None:
    token = await signed_in_token(shine, browser)
    async with httpx.AsyncClient(timeout=30) as http:
        stranger = await http.post(
            f"{shine}/auth/widget/sign-out", headers={"Authorization": f"Bearer {token}", "Origin": STRANGER}
        )
        assert stranger.status_code == 403
        assert (await api(shine, token)).status_code == 200  # another page cannot sign the shopper out
        out = await http.post(
            f"{shine}/auth/widget/sign-out", headers={"Authorization": f"Bearer {token}", "Origin": SHOP}
        )
    assert out.status_code == 204
    assert (await api(shine, token)).status_code == 401


async def test_signing_out_everywhere_ends_widget_tokens(shine: str, browser: Browser) -> None:
    token = await signed_in_token(shine, browser)  # `browser` now holds Shine's own session cookie too
    page = await browser.http.get(f"{shine}/auth/logout")
    (form,) = forms_of(page.text)
    out = await browser.http.post(f"{shine}/auth/logout", data={**form.fields, "everywhere": "1"})
    assert out.status_code == 303
    assert (await api(shine, token)).status_code == 401


async def test_the_token_ends_when_idle_and_each_use_keeps_it(
    shine: str, browser: Browser, clock: Clock
) -> None:
    token = await signed_in_token(shine, browser)
    for _ in range(3):  # 33 hours in all, used every 11
        clock.advance(hours=11)
        assert (await api(shine, token)).status_code == 200
    clock.advance(hours=13)
    assert (await api(shine, token)).status_code == 401


async def test_closing_the_account_from_the_widget_ends_its_token(shine: str, browser: Browser) -> None:
    token = await signed_in_token(shine, browser)
    async with httpx.AsyncClient(timeout=30) as http:
        closed = await http.post(
            f"{shine}/api/account/close",
            json={"confirm": True},
            headers={"Authorization": f"Bearer {token}", "Origin": SHOP},
        )
    assert closed.status_code == 200, closed.text
    assert closed.headers["access-control-allow-origin"] == SHOP
    assert (await api(shine, token)).status_code == 401


async def test_a_shopper_signed_in_to_shine_is_not_asked_to_sign_in_again(
    shine: str, browser: Browser
) -> None:
    await signed_in_token(shine, browser)  # signed in once: the browser holds Shine's session cookie
    browser.visited.clear()
    second = Popup(shine, browser, OTHER_SHOP)
    response = await exchange(shine, await second.code(), second.verifier, OTHER_SHOP)
    assert response.status_code == 200 and response.json()["account"]["email"] == "ana@example.com"
    assert not [url for url in browser.visited if "/auth/dev" in url or "/auth/login" in url]


async def test_expired_widget_codes_and_tokens_leave_the_disk(settings: Settings) -> None:
    db = await open_database(settings)
    try:
        now = utcnow()
        verifier = secrets.token_urlsafe(48)
        for at in (now - timedelta(days=2), now):  # one sign-in two days ago, one just now
            code = await issue_code(db, "usr_ana", SHOP, challenge_of(verifier), now=at)
            await exchange_code(db, code, verifier, SHOP, now=at)
        counts = await purge_expired(db, now)
        assert (counts["widget_codes"], counts["widget_tokens"]) == (1, 1)
        async with db.session() as session:
            left = (await session.execute(select(WidgetToken))).scalars().all()
        assert [aware(t.created_at) for t in left] == [now]
    finally:
        await db.close()
