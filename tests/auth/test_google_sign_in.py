"""Google sign-in end to end: Shine's routes and the real `google-auth-oauthlib` Flow and
`google.oauth2.id_token` against the local Google fake, and every way a sign-in must fail."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from shine_mcp.auth import audit
from shine_mcp.auth.sessions import create_session
from shine_mcp.config import Settings
from shine_mcp.store.skin_reports import SkinReportRecord, add_report, new_report_id
from shine_mcp.store.users import User, WebSession
from tests.auth.conftest import GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET
from tests.auth.support import Browser, Clock
from tests.fakes.google_oauth import FakeGoogle

RunShine = Callable[[Settings], AbstractContextManager[str]]


async def sign_in(browser: Browser, base: str) -> httpx.Response:
    final = await browser.go(f"{base}/auth/google/login?next=/auth/me")
    assert isinstance(final, httpx.Response)
    return final


async def test_google_sign_in_creates_the_user_and_a_session(
    run_shine: RunShine,
    google_settings: Callable[..., Settings],
    browser: Browser,
    fake_google: FakeGoogle,
    inspect_db,
) -> None:
    settings = google_settings()
    with run_shine(settings) as base:
        me = await sign_in(browser, base)
    assert me.status_code == 200
    body = me.json()
    assert body["signed_in"] is True
    assert body["user"]["email"] == "ana@example.com"
    assert body["user"]["name"] == "Ana Example"
    assert body["user"]["roles"] == ["user"]
    # Shine used PKCE S256 and sent the verifier; it asked Google only for who signed in.
    sent = fake_google.token_requests[-1]
    assert len(sent["code_verifier"]) >= 43
    authorize = next(u for u in browser.visited if "/o/oauth2/v2/auth" in u)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["nonce"] and query["state"]
    assert query["access_type"] == ["online"]
    db = await inspect_db(settings)
    async with db.session() as session:
        user = (await session.execute(select(User))).scalar_one()
    assert user.google_sub == fake_google.person.sub and user.email_verified
    assert [e.action for e in await audit.events(db)] == ["sign_in"]


async def test_session_cookie_is_httponly_lax_and_opaque(
    run_shine: RunShine, google_settings: Callable[..., Settings], browser: Browser, inspect_db
) -> None:
    settings = google_settings()
    with run_shine(settings) as base:
        await sign_in(browser, base)
    cookie = next(c for c in browser.http.cookies.jar if c.name == "shine_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "Lax"
    assert cookie.path == "/"
    db = await inspect_db(settings)
    async with db.session() as session:
        stored = (await session.execute(select(WebSession))).scalar_one()
    assert cookie.value not in stored.token_hash and len(stored.token_hash) == 64


async def test_admin_emails_get_the_admin_role(
    run_shine: RunShine, google_settings: Callable[..., Settings], browser: Browser
) -> None:
    with run_shine(google_settings(admin_emails=["ANA@example.com"])) as base:
        me = await sign_in(browser, base)
    assert me.json()["user"]["roles"] == ["admin", "user"]


def _callback_with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _until_callback(browser: Browser, base: str) -> str:
    stop = await browser.go(f"{base}/auth/google/login", stop_at=lambda u: "/auth/google/callback" in u)
    assert isinstance(stop, str)
    return stop


async def _refused(browser: Browser, url: str, inspect_db, settings: Settings, reason: str) -> None:
    response = await browser.http.get(url)
    assert response.status_code == 400
    assert "Sign-in did not work" in response.text
    me = (await browser.http.get(url.split("/auth/")[0] + "/auth/me")).json()
    assert me["signed_in"] is False
    db = await inspect_db(settings)
    failures = await audit.events(db, action="sign_in_failed")
    assert [e.detail["reason"] for e in failures] == [reason]
    async with db.session() as session:
        assert (await session.execute(select(WebSession))).first() is None


async def test_a_callback_with_another_state_is_refused(
    run_shine: RunShine, google_settings: Callable[..., Settings], browser: Browser, inspect_db
) -> None:
    settings = google_settings()
    with run_shine(settings) as base:
        callback = await _until_callback(browser, base)
        await _refused(
            browser, _callback_with(callback, state="forged"), inspect_db, settings, "state_mismatch"
        )


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"nonce": "not-the-one-shine-sent"}, "nonce_mismatch"),
        ({"aud": "another-app.apps.googleusercontent.com"}, "wrong_audience"),
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "expired_id_token"),
        ({"email_verified": False}, "email_unverified"),
        ({"iss": "https://accounts.evil.example"}, "wrong_issuer"),
    ],
    ids=["wrong-nonce", "wrong-audience", "expired", "unverified-email", "wrong-issuer"],
)
async def test_an_untrustworthy_id_token_is_refused(
    run_shine: RunShine,
    google_settings: Callable[..., Settings],
    browser: Browser,
    fake_google: FakeGoogle,
    inspect_db,
    tamper: dict[str, object],
    reason: str,
) -> None:
    settings = google_settings()
    with run_shine(settings) as base:
        callback = await _until_callback(browser, base)
        fake_google.tamper = tamper
        await _refused(browser, callback, inspect_db, settings, reason)


async def test_an_id_token_signed_by_another_key_is_refused(
    run_shine: RunShine,
    google_settings: Callable[..., Settings],
    browser: Browser,
    fake_google: FakeGoogle,
    inspect_db,
) -> None:
    settings = google_settings()
    with run_shine(settings) as base:
        callback = await _until_callback(browser, base)
        fake_google.sign_with = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        await _refused(browser, callback, inspect_db, settings, "invalid_id_token")


async def test_a_replayed_code_is_refused(
    run_shine: RunShine, google_settings: Callable[..., Settings], fake_google: FakeGoogle, inspect_db
) -> None:
    settings = google_settings()
    async with httpx.AsyncClient(timeout=30) as first, httpx.AsyncClient(timeout=30) as attacker:
        with run_shine(settings) as base:
            callback = await _until_callback(Browser(first), base)
            login_cookie = first.cookies.get("shine_login")
            assert (await first.get(callback)).status_code == 303
            # Someone who captured the redirect and the login cookie tries the same answer again.
            attacker.cookies.set("shine_login", login_cookie or "", domain="127.0.0.1")
            replay = await attacker.get(callback)
    assert replay.status_code == 400
    assert "shine_session" not in replay.cookies
    assert any(entry.get("replayed") for entry in fake_google.codes.values())
    db = await inspect_db(settings)
    assert [e.detail["reason"] for e in await audit.events(db, action="sign_in_failed")] == ["code_rejected"]


async def test_declining_at_google_signs_nobody_in(
    run_shine: RunShine,
    google_settings: Callable[..., Settings],
    browser: Browser,
    fake_google: FakeGoogle,
    inspect_db,
) -> None:
    fake_google.consent = False
    settings = google_settings()
    with run_shine(settings) as base:
        callback = await _until_callback(browser, base)
        await _refused(browser, callback, inspect_db, settings, "cancelled")


async def test_a_callback_without_the_login_cookie_is_refused(
    run_shine: RunShine, google_settings: Callable[..., Settings], browser: Browser, inspect_db
) -> None:
    settings = google_settings()
    with run_shine(settings) as base:
        callback = await _until_callback(browser, base)
        browser.http.cookies.clear()
        await _refused(browser, callback, inspect_db, settings, "expired_login")


async def test_the_login_cookie_expires_after_ten_minutes(
    run_shine: RunShine, google_settings: Callable[..., Settings], browser: Browser, clock: Clock, inspect_db
) -> None:
    settings = google_settings()
    with run_shine(settings) as base:
        callback = await _until_callback(browser, base)
        clock.advance(minutes=11)
        await _refused(browser, callback, inspect_db, settings, "expired_login")


async def test_sign_in_starts_a_new_session_and_merges_the_guest(
    run_shine: RunShine, google_settings: Callable[..., Settings], browser: Browser, clock: Clock, inspect_db
) -> None:
    settings = google_settings()
    db = await inspect_db(settings)
    guest_token, guest = await create_session(db, settings, "gst_0123456789abcdef", now=clock(), guest=True)
    report = SkinReportRecord(id=new_report_id(), user_id=guest.user_id, analysis={}, model_hashes={})
    await add_report(db, report)  # made while browsing as a guest
    browser.http.cookies.set("shine_session", guest_token, domain="127.0.0.1")
    with run_shine(settings) as base:
        before = (await browser.http.get(f"{base}/auth/me")).json()
        assert before["guest"] is True
        me = await sign_in(browser, base)
        assert me.json()["signed_in"] is True
        # The guest's cookie value no longer opens anything: a planted session id cannot be promoted.
        async with httpx.AsyncClient(cookies={"shine_session": guest_token}) as planted:
            stale = (await planted.get(f"{base}/auth/me")).json()
    assert stale["signed_in"] is False and stale["guest"] is False
    assert browser.http.cookies.get("shine_session") != guest_token
    merged = await audit.events(db, action="guest_merged")
    user_id = me.json()["user"]["id"]
    assert len(merged) == 1 and merged[0].actor_id == user_id
    assert merged[0].detail["rows"] == {"skin_reports": 1}
    async with db.session() as session:
        carried = await session.get(SkinReportRecord, report.id)
    assert carried is not None and carried.user_id == user_id  # the guest's report is now the account's


@pytest.mark.parametrize(
    ("steer", "problem"),
    [
        ({"advertised_base": "http"}, "non-https endpoints"),
        ({"discovery_path": "/no-such-document"}, "could not be fetched"),
    ],
    ids=["http-endpoints", "discovery-fails"],
)
async def test_a_broken_openid_provider_gives_a_clear_503_and_one_log_line(
    run_shine: RunShine,
    google_settings: Callable[..., Settings],
    browser: Browser,
    fake_google: FakeGoogle,
    caplog: pytest.LogCaptureFixture,
    inspect_db,
    steer: dict[str, str],
    problem: str,
) -> None:
    """A provider whose discovery document lists http:// endpoints (oauthlib refuses them), or whose
    document cannot be fetched: the shopper gets a plain "unavailable" page, the merchant one log line
    naming the setting to fix, and nobody is signed in."""
    if steer.get("advertised_base") == "http":
        fake_google.advertised_base = fake_google.issuer.replace("https://", "http://")
    settings = google_settings()
    if "discovery_path" in steer:
        discovery = f"{fake_google.issuer}{steer['discovery_path']}"
        settings = settings.model_copy(update={"google_discovery_url": discovery})
    caplog.set_level(logging.WARNING)
    with run_shine(settings) as base:
        caplog.clear()
        response = await browser.http.get(f"{base}/auth/google/login?next=/auth/me")
    assert response.status_code == 503
    assert "Sign-in is unavailable right now" in response.text
    assert "oauth" not in response.text.lower() and "https" not in response.text
    assert "shine_login" not in response.cookies
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    line = warnings[0].getMessage()
    assert "SHINE_GOOGLE_DISCOVERY_URL" in line and problem in line
    assert GOOGLE_CLIENT_SECRET not in line and GOOGLE_CLIENT_ID not in line
    db = await inspect_db(settings)
    async with db.session() as session:
        assert (await session.execute(select(WebSession))).first() is None
