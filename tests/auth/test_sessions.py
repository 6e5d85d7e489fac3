"""Web sessions and the loopback dev sign-in: where the dev sign-in exists, sliding expiry, the
per-user session limit, sign-out, and returning only to local pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
import pytest

from shine_mcp.auth import audit
from shine_mcp.config import Settings
from tests.auth.support import Browser, Clock, forms_of

RunShine = Callable[[Settings], AbstractContextManager[str]]


async def dev_sign_in(browser: Browser, base: str, next_path: str = "/auth/me") -> httpx.Response:
    final = await browser.go(f"{base}/auth/login?next={next_path}")
    assert isinstance(final, httpx.Response)
    return final


async def me(http: httpx.AsyncClient, base: str) -> dict[str, object]:
    return (await http.get(f"{base}/auth/me")).json()


async def test_the_dev_sign_in_works_on_loopback_and_says_what_it_is(
    run_shine: RunShine, shine_settings: Callable[..., Settings], browser: Browser
) -> None:
    with run_shine(shine_settings()) as base:
        page = await browser.http.get(f"{base}/auth/dev")
        signed_in = await dev_sign_in(browser, base)
    assert "Development sign-in, loopback only" in page.text and "no password" in page.text
    body = signed_in.json()
    assert body["signed_in"] is True and body["user"]["email"] == "ana@example.com"
    assert body["sign_in"] == {"google": False, "dev": True}


@pytest.mark.parametrize(
    "overrides",
    [
        {"google_client_id": "id", "google_client_secret": "secret"},
        {"public_url": "https://shine.example.com"},
        {"allowed_hosts": ["shine.example.com"]},
    ],
    ids=["google-configured", "public-url", "allowed-hosts"],
)
async def test_the_dev_sign_in_does_not_exist_beyond_a_keyless_loopback_setup(
    run_shine: RunShine, shine_settings: Callable[..., Settings], overrides: dict[str, object]
) -> None:
    async with httpx.AsyncClient() as http:
        with run_shine(shine_settings(**overrides)) as base:
            page = await http.get(f"{base}/auth/dev")
            posted = await http.post(f"{base}/auth/dev", data={"email": "mallory@example.com"})
    assert page.status_code == 404 and posted.status_code in (404, 405)


async def test_the_dev_sign_in_refuses_requests_relayed_by_a_proxy(
    run_shine: RunShine, shine_settings: Callable[..., Settings]
) -> None:
    async with httpx.AsyncClient() as http:
        with run_shine(shine_settings()) as base:
            page = await http.get(f"{base}/auth/dev", headers={"X-Forwarded-For": "203.0.113.7"})
    assert page.status_code == 404


async def test_a_sign_in_form_without_its_csrf_token_is_refused(
    run_shine: RunShine, shine_settings: Callable[..., Settings], browser: Browser
) -> None:
    with run_shine(shine_settings()) as base:
        await browser.http.get(f"{base}/auth/dev")  # gets the CSRF cookie, but not the form's token
        forged = await browser.http.post(f"{base}/auth/dev", data={"email": "mallory@example.com"})
        cross_site = await browser.http.post(
            f"{base}/auth/dev",
            data={"email": "mallory@example.com", "csrf": "x"},
            headers={"Origin": "https://evil.example"},
        )
        state = await me(browser.http, base)
    assert forged.status_code == 403 and cross_site.status_code == 403
    assert state["signed_in"] is False


async def test_sessions_slide_while_used_and_end_when_idle(
    run_shine: RunShine, shine_settings: Callable[..., Settings], browser: Browser, clock: Clock
) -> None:
    with run_shine(shine_settings(session_days=14)) as base:
        await dev_sign_in(browser, base)
        clock.advance(days=10)
        used = await me(browser.http, base)
        clock.advance(days=10)  # 20 days after sign-in, 10 after last use
        still = await me(browser.http, base)
        clock.advance(days=15)
        idle = await me(browser.http, base)
    assert used["signed_in"] is True and still["signed_in"] is True
    assert idle["signed_in"] is False


async def test_a_user_holds_at_most_the_configured_number_of_sessions(
    run_shine: RunShine, shine_settings: Callable[..., Settings], clock: Clock
) -> None:
    async with httpx.AsyncClient() as a, httpx.AsyncClient() as b, httpx.AsyncClient() as c:
        with run_shine(shine_settings(max_sessions=2)) as base:
            for http in (a, b, c):
                await dev_sign_in(Browser(http), base)
                clock.advance(minutes=1)
            states = [(await me(http, base))["signed_in"] for http in (a, b, c)]
    assert states == [False, True, True]  # the oldest session ended


async def test_signing_out_ends_the_session_for_good(
    run_shine: RunShine, shine_settings: Callable[..., Settings], browser: Browser, inspect_db
) -> None:
    settings = shine_settings()
    with run_shine(settings) as base:
        await dev_sign_in(browser, base)
        token = browser.http.cookies.get("shine_session")
        page = await browser.http.get(f"{base}/auth/logout")
        form = forms_of(page.text)[0]
        out = await browser.http.post(f"{base}{form.action}", data=form.fields)
        after = await me(browser.http, base)
        async with httpx.AsyncClient(cookies={"shine_session": token or ""}) as replay:
            replayed = await me(replay, base)
    assert out.status_code == 303
    assert after["signed_in"] is False and replayed["signed_in"] is False
    db = await inspect_db(settings)
    assert [e.action for e in await audit.events(db)][:2] == ["sign_out", "sign_in"]


async def test_signing_out_everywhere_ends_every_session_of_the_user(
    run_shine: RunShine, shine_settings: Callable[..., Settings]
) -> None:
    async with httpx.AsyncClient() as laptop, httpx.AsyncClient() as phone:
        with run_shine(shine_settings()) as base:
            await dev_sign_in(Browser(laptop), base)
            await dev_sign_in(Browser(phone), base)
            page = await laptop.get(f"{base}/auth/logout")
            form = forms_of(page.text)[0]
            await laptop.post(f"{base}{form.action}", data={**form.fields, "everywhere": "1"})
            phone_state = await me(phone, base)
    assert phone_state["signed_in"] is False


@pytest.mark.parametrize(
    "next_path", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
async def test_sign_in_only_returns_to_local_pages(
    run_shine: RunShine, shine_settings: Callable[..., Settings], browser: Browser, next_path: str
) -> None:
    from urllib.parse import quote

    with run_shine(shine_settings()) as base:
        landed = await browser.go(
            f"{base}/auth/login?next={quote(next_path, safe='')}", stop_at=lambda u: not u.startswith(base)
        )
        signed_in = await me(browser.http, base)
    assert isinstance(landed, httpx.Response), f"left the site for {landed}"
    assert str(landed.url) == f"{base}/"
    assert signed_in["signed_in"] is True


async def test_a_browser_that_sends_origin_null_can_still_sign_in_with_the_token(
    run_shine: RunShine, shine_settings: Callable[..., Settings], browser: Browser
) -> None:
    """Chrome sends `Origin: null` with a page's own form post under a no-referrer policy or a privacy
    setting; the form's CSRF token is what proves the post came from Shine's page."""
    with run_shine(shine_settings()) as base:
        page = await browser.http.get(f"{base}/auth/dev?next=/auth/me")
        assert page.headers["referrer-policy"] == "same-origin"  # so browsers send the real origin
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        form = {"csrf": token.group(1), "email": "ana@example.com", "next": "/auth/me"}
        signed = await browser.http.post(
            f"{base}/auth/dev", data=form, headers={"Origin": "null"}, follow_redirects=True
        )
    assert signed.status_code == 200 and signed.json()["signed_in"] is True
