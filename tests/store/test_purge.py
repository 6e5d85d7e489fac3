"""Expired rows leave the database on a schedule: uploads, idle chats, web cache entries, OAuth requests,
codes and tokens, web sessions and rate-limit buckets. Live ones stay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import pytest
from sqlmodel import SQLModel, select

from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.services import Services
from shine_mcp.store import chat as chat_store
from shine_mcp.store import web_cache
from shine_mcp.store.clicks import record_click
from shine_mcp.store.db import Database, open_database
from shine_mcp.store.purge import purge_expired
from shine_mcp.store.tables import Click
from shine_mcp.store.users import OAuthCode, OAuthRequest, OAuthToken, RateLimitBucket, WebSession
from tests.conftest import make_settings
from web_shell.app import create_app

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=utcnow().tzinfo)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(make_settings(tmp_path, load_demo_catalog=False))
    try:
        yield database
    finally:
        await database.close()


def _code(code_hash: str, expires_at: datetime) -> OAuthCode:
    return OAuthCode(
        code_hash=code_hash,
        client_id="client",
        user_id="usr_a",
        scopes="shine:read",
        code_challenge="c" * 43,
        redirect_uri="http://127.0.0.1/callback",
        resource="http://127.0.0.1/mcp",
        family_id="fam_" + code_hash,
        expires_at=expires_at,
    )


def _token(token_id: str, expires_at: datetime) -> OAuthToken:
    return OAuthToken(
        id=token_id,
        token_hash=token_id.ljust(64, "0"),
        kind="access",
        family_id="fam_a",
        client_id="client",
        user_id="usr_a",
        scopes="shine:read",
        resource="http://127.0.0.1/mcp",
        expires_at=expires_at,
    )


def _session(session_id: str, expires_at: datetime) -> WebSession:
    return WebSession(
        id=session_id, token_hash=session_id.ljust(64, "0"), user_id="gst_a", expires_at=expires_at
    )


async def _add(db: Database, *rows: SQLModel) -> None:
    async with db.session() as session:
        session.add_all(rows)
        await session.commit()


async def _ids(db: Database, column: object) -> set[str]:
    async with db.session() as session:
        return {str(value) for value in (await session.execute(select(column))).scalars()}


async def _upload(db: Database, *, at: datetime, keep: bool = False) -> str:
    row = await chat_store.add_upload(
        db, "gst_a", b"jpeg", width=1, height=1, keep=keep, ttl=timedelta(minutes=30), now=at
    )
    return row.id


async def test_a_purge_deletes_what_expired_and_keeps_what_is_live(db: Database) -> None:
    expired_upload = await _upload(db, at=NOW - timedelta(hours=1))
    live_upload = await _upload(db, at=NOW - timedelta(minutes=5))
    kept_upload = await _upload(db, at=NOW - timedelta(days=300), keep=True)
    idle_chat = await chat_store.create_chat(db, "gst_a", now=NOW - timedelta(days=91))
    recent_chat = await chat_store.create_chat(db, "gst_a", now=NOW - timedelta(days=89))
    await web_cache.put(db, "new", "image_search", {"a": 2}, ttl_seconds=3600, now=NOW)
    await web_cache.put(
        db, "old", "image_search", {"a": 1}, ttl_seconds=60, now=NOW - timedelta(hours=1)
    )  # (a put sweeps what expired before it)
    await _add(
        db,
        OAuthRequest(id="azr_old", client_id="client", expires_at=NOW - timedelta(minutes=1)),
        OAuthRequest(id="azr_new", client_id="client", expires_at=NOW + timedelta(minutes=9)),
        _code("old", NOW - timedelta(days=2)),
        _code("late", NOW - timedelta(hours=2)),  # within a day: a replay must still be recognised
        _token("tok_old", NOW - timedelta(days=2)),
        _token("tok_new", NOW + timedelta(hours=1)),
        _session("ses_old", NOW - timedelta(days=2)),
        _session("ses_new", NOW + timedelta(days=20)),
        RateLimitBucket(key="ip:old", window_start=int(NOW.timestamp()) - 600, count=3),
        RateLimitBucket(key="ip:new", window_start=int(NOW.timestamp()) - 60, count=3),
    )

    counts = await purge_expired(db, NOW)

    assert counts == {
        "uploads": 1,
        "idle_chats": 1,
        "clicks_unlinked_from_chats": 0,
        "web_cache": 1,
        "oauth_requests": 1,
        "oauth_codes": 1,
        "oauth_tokens": 1,
        "web_sessions": 1,
        "widget_codes": 0,
        "widget_tokens": 0,
        "rate_limit_buckets": 1,
        "mcp_stream_events": 0,  # tests/test_resumable_streams.py fills and purges these
    }
    assert await _ids(db, chat_store.ChatUpload.id) == {live_upload, kept_upload} != {expired_upload}
    assert await _ids(db, chat_store.ChatSession.id) == {recent_chat.id} != {idle_chat.id}
    assert await _ids(db, web_cache.WebCacheEntry.key) == {"new"}
    assert await _ids(db, OAuthRequest.id) == {"azr_new"}
    assert await _ids(db, OAuthCode.code_hash) == {"late"}
    assert await _ids(db, OAuthToken.id) == {"tok_new"}
    assert await _ids(db, WebSession.id) == {"ses_new"}
    assert await _ids(db, RateLimitBucket.key) == {"ip:new"}
    assert set((await purge_expired(db, NOW)).values()) == {0}  # a second pass finds nothing


async def test_clicks_stay_counted_without_the_id_of_a_purged_chat(db: Database) -> None:
    idle_chat = await chat_store.create_chat(db, "gst_a", now=NOW - timedelta(days=91))
    recent_chat = await chat_store.create_chat(db, "gst_b", now=NOW - timedelta(days=1))
    for conversation in (idle_chat.id, recent_chat.id, "conv_of_an_mcp_client"):
        await record_click(
            db,
            product_id="prd_000000000001",
            variant_id=None,
            merchant="amazon.com",
            source="widget",
            conversation_id=conversation,
            user_id=None,
            at=NOW - timedelta(days=95),
        )

    counts = await purge_expired(db, NOW)

    assert counts["idle_chats"] == 1 and counts["clicks_unlinked_from_chats"] == 1
    assert await _ids(db, Click.conversation_id) == {"None", recent_chat.id, "conv_of_an_mcp_client"}
    assert len(await _ids(db, Click.id)) == 3  # the shop's counts stay


async def test_expired_uploads_leave_the_database_on_schedule_without_another_upload(
    settings: Settings,
) -> None:
    services = Services(settings.model_copy(update={"purge_seconds": 0.05}))
    app = create_app(services.settings, services)
    async with app.router.lifespan_context(app):
        purge, db = app.state.purge, services.db
        expired = await _upload(db, at=utcnow() - timedelta(hours=1))
        live = await _upload(db, at=utcnow())
        with anyio.fail_after(10):
            await purge.wait_for_passes(purge.passes + 2)  # one pass may have begun before the upload
        assert await _ids(db, chat_store.ChatUpload.id) == {live} != {expired}


async def test_a_purge_interval_of_zero_runs_no_purge(settings: Settings) -> None:
    services = Services(settings.model_copy(update={"purge_seconds": 0}))
    app = create_app(services.settings, services)
    async with app.router.lifespan_context(app):
        db = services.db
        expired = await _upload(db, at=utcnow() - timedelta(hours=1))
        assert app.state.purge.passes == 0
        assert await _ids(db, chat_store.ChatUpload.id) == {expired}
