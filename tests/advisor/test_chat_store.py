"""The chat store on SQLite and PostgreSQL: uploads expire unless kept, idle chats are swept, a chat is
saved only against the version that was read, and another person's rows do not exist for you."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.store import chat as chat_store
from shine_mcp.store.db import Database, open_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    database = await open_database(Settings(data_dir=tmp_path, database_url=url, load_demo_catalog=False))  # type: ignore[call-arg]
    yield database
    await database.close()


async def test_an_upload_keeps_its_bytes_and_expires_after_its_ttl_unless_kept(db: Database) -> None:
    now = utcnow()
    photo = bytes(range(256)) * 40
    brief = await chat_store.add_upload(
        db, "gst_a", photo, width=10, height=20, keep=False, ttl=timedelta(minutes=30), now=now
    )
    kept = await chat_store.add_upload(
        db, "gst_a", b"y", width=1, height=1, keep=True, ttl=timedelta(minutes=30), now=now
    )
    later = now + timedelta(minutes=31)

    found = await chat_store.get_upload(db, "gst_a", brief.id, now=now)
    assert found is not None and found.data == photo and (found.width, found.height) == (10, 20)
    assert await chat_store.get_upload(db, "gst_b", brief.id, now=now) is None  # someone else's
    assert await chat_store.get_upload(db, "gst_a", brief.id, now=later) is None
    assert await chat_store.purge_expired_uploads(db, now=later) == 1
    assert await chat_store.get_upload(db, "gst_a", kept.id, now=later + timedelta(days=365)) is not None
    assert await chat_store.upload_lookup(db)("gst_a", kept.id) == b"y"
    assert not await chat_store.delete_upload(db, "gst_b", kept.id)
    assert await chat_store.delete_upload(db, "gst_a", kept.id)


async def test_a_chat_left_idle_for_months_is_swept_but_a_recent_one_stays(db: Database) -> None:
    now = utcnow()
    old = await chat_store.create_chat(db, "gst_a", now=now - timedelta(days=chat_store.CHAT_IDLE_DAYS + 1))
    recent = await chat_store.create_chat(db, "gst_a", now=now - timedelta(days=1))

    assert await chat_store.purge_idle_chats(db, now=now) == 1
    assert await chat_store.get_chat(db, "gst_a", old.id) is None
    assert await chat_store.get_chat(db, "gst_a", recent.id) is not None
    assert await chat_store.get_chat(db, "gst_b", recent.id) is None  # someone else's chat does not exist
    assert await chat_store.chat_owner(db, recent.id) == "gst_a"


async def test_a_save_against_an_older_version_is_refused(db: Database) -> None:
    chat = await chat_store.create_chat(db, "gst_a", now=utcnow())
    conversation = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "state": {"turn": 1},
    }

    first = await chat_store.save_chat(
        db, "gst_a", chat.id, conversation, version=0, advisor="x", now=utcnow()
    )
    stale = await chat_store.save_chat(db, "gst_a", chat.id, {}, version=0, advisor="x", now=utcnow())
    stranger = await chat_store.save_chat(db, "gst_b", chat.id, {}, version=1, advisor="x", now=utcnow())

    assert (first, stale, stranger) == (True, False, False)
    saved = await chat_store.get_chat(db, "gst_a", chat.id)
    assert saved is not None and saved.version == 1 and saved.conversation == conversation


async def test_a_caller_holding_the_stored_version_is_not_sent_the_conversation_again(db: Database) -> None:
    chat = await chat_store.create_chat(db, "gst_a", now=utcnow())
    conversation = {"messages": [{"role": "user", "content": "hello"}], "state": {"turn": 1}}
    assert await chat_store.save_chat(
        db, "gst_a", chat.id, conversation, version=0, advisor="offline", now=utcnow()
    )
    held = await chat_store.get_chat(db, "gst_a", chat.id, held_version=1)
    assert held is not None and held.version == 1 and held.conversation == {}
    moved = await chat_store.get_chat(db, "gst_a", chat.id, held_version=0)  # another worker saved since
    assert moved is not None and moved.version == 1 and moved.conversation == conversation
    assert await chat_store.get_chat(db, "gst_b", chat.id, held_version=1) is None  # not theirs
