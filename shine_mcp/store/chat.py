"""Chat sessions of the web advisor (each conversation's messages and rule state) and photo uploads.

Both hold personal data, so both carry `user_id` and every query filters by it: another person's chat or
upload does not exist for you. Uploads are kept only until `expires_at` unless the person asked to keep
them (`expires_at` null); expired ones are never returned, and the purge job (`store.purge`) deletes them.

Creating and saving chats and adding uploads are single units of work for `Database.write` (on SQLite the
writer thread, which waits its turn and retries a locked database), so a reply under load is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    LargeBinary,
    case,
    delete,
    insert,
    null,
    type_coerce,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel, col, select

from shine_mcp.clock import aware, utcnow
from shine_mcp.store.db import Database

CHAT_PREFIX = "chs_"
UPLOAD_PREFIX = "upl_"
# A conversation nobody touched for this long is deleted with its state (carts and orders live elsewhere).
CHAT_IDLE_DAYS = 90


def new_chat_id() -> str:
    return CHAT_PREFIX + secrets.token_hex(12)


def new_upload_id() -> str:
    return UPLOAD_PREFIX + secrets.token_hex(12)


class ChatSession(SQLModel, table=True):
    """One conversation with the advisor: Anthropic-shaped messages plus the state the loop's rules need."""

    __tablename__ = "chat_sessions"
    __table_args__ = (
        Index("ix_chat_sessions_user_id", "user_id"),
        Index("ix_chat_sessions_updated_at", "updated_at"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "chs_" + 24 hex
    user_id: str = Field(max_length=64)
    version: int = 0  # bumped on every save; a save against an older version is refused
    conversation: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    advisor: str = Field(default="", max_length=120)  # which advisor wrote the last reply
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class ChatUpload(SQLModel, table=True):
    """A photo sent to the chat: metadata-free JPEG bytes, kept briefly unless the person asked to keep it."""

    __tablename__ = "chat_uploads"
    __table_args__ = (
        Index("ix_chat_uploads_user_id", "user_id"),
        Index("ix_chat_uploads_expires_at", "expires_at"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "upl_" + 24 hex
    user_id: str = Field(max_length=64)
    media_type: str = Field(max_length=40)
    width: int
    height: int
    size_bytes: int
    sha256: str = Field(max_length=64)
    keep: bool = False
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


_CHATS = ChatSession.__table__  # type: ignore[attr-defined]
_UPLOADS = ChatUpload.__table__  # type: ignore[attr-defined]


async def _written(db: Database, statement: Any) -> int:
    """Run one writing statement as one unit of work (atomic on its own: no transaction around it on
    PostgreSQL) and return how many rows it touched."""

    def work(connection: Connection) -> int:
        rowcount = int(connection.execute(statement).rowcount or 0)
        connection.commit()
        return rowcount

    return await db.write_one(work)


# --- chats -------------------------------------------------------------------------------------------
async def create_chat(db: Database, user_id: str, *, now: datetime) -> ChatSession:
    row = ChatSession(id=new_chat_id(), user_id=user_id, created_at=now, updated_at=now)
    await _written(db, insert(_CHATS).values(**row.model_dump()))
    return row


async def get_chat(
    db: Database, user_id: str, chat_id: str, *, held_version: int | None = None
) -> ChatSession | None:
    """The person's chat, or None. `held_version`: the version of this chat the caller keeps in memory;
    while it is still the stored one the conversation is neither read nor sent (a long chat is hundreds of
    KB), and the row comes back with an empty `conversation` for the caller to fill from its own copy."""
    conversation = _CHATS.c.conversation
    if held_version is not None:
        conversation = type_coerce(case((_CHATS.c.version == held_version, null()), else_=conversation), JSON)
    others = [column for column in _CHATS.c if column.name != "conversation"]
    # SQLAlchemy's `select`: sqlmodel's types at most four columns.
    statement = sa_select(*others, conversation.label("conversation")).where(
        _CHATS.c.id == chat_id, _CHATS.c.user_id == user_id
    )
    async with db.reading() as session:
        row = (await session.execute(statement)).mappings().first()
    if row is None:
        return None
    return ChatSession.model_validate({**row, "conversation": row["conversation"] or {}})


async def chat_owner(db: Database, chat_id: str) -> str | None:
    """Whose chat this is (to recognise a guest by their signed chat token); None when it does not exist."""
    async with db.reading() as session:
        rows = await session.execute(select(ChatSession.user_id).where(ChatSession.id == chat_id))
        return rows.scalars().first()


async def save_chat(
    db: Database,
    user_id: str,
    chat_id: str,
    conversation: dict[str, Any],
    *,
    version: int,
    advisor: str,
    now: datetime,
) -> bool:
    """Store a conversation if nobody saved it since `version` was read; False when someone did.
    Raises `DatabaseBusy` when the database stayed locked: then nothing was stored."""
    saved = await _written(
        db,
        update(_CHATS)
        .where(_CHATS.c.id == chat_id)
        .where(_CHATS.c.user_id == user_id)
        .where(_CHATS.c.version == version)
        .values(conversation=conversation, version=version + 1, advisor=advisor, updated_at=now),
    )
    return saved == 1


async def purge_idle_chats(db: Database, *, now: datetime) -> int:
    cutoff = now - timedelta(days=CHAT_IDLE_DAYS)
    return await _written(db, delete(_CHATS).where(_CHATS.c.updated_at < cutoff))


# --- uploads -----------------------------------------------------------------------------------------
async def add_upload(
    db: Database,
    user_id: str,
    data: bytes,
    *,
    width: int,
    height: int,
    keep: bool,
    ttl: timedelta,
    now: datetime,
    media_type: str = "image/jpeg",
) -> ChatUpload:
    row = ChatUpload(
        id=new_upload_id(),
        user_id=user_id,
        media_type=media_type,
        width=width,
        height=height,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        keep=keep,
        data=data,
        created_at=now,
        expires_at=None if keep else now + ttl,
    )
    await _written(db, insert(_UPLOADS).values(**row.model_dump()))
    return row


async def get_upload(db: Database, user_id: str, upload_id: str, *, now: datetime) -> ChatUpload | None:
    """The caller's upload, unless it is someone else's, unknown or expired."""
    async with db.reading() as session:
        rows = await session.execute(
            select(ChatUpload).where(ChatUpload.id == upload_id, ChatUpload.user_id == user_id)
        )
        row = rows.scalars().first()
    if row is None or (row.expires_at is not None and aware(row.expires_at) <= now):
        return None
    return row


async def delete_upload(db: Database, user_id: str, upload_id: str) -> bool:
    async with db.session() as session, session.begin():
        result = await session.execute(
            delete(ChatUpload)
            .where(col(ChatUpload.id) == upload_id)
            .where(col(ChatUpload.user_id) == user_id)
        )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def purge_expired_uploads(db: Database, *, now: datetime) -> int:
    return await _written(
        db, delete(_UPLOADS).where(_UPLOADS.c.expires_at.is_not(None)).where(_UPLOADS.c.expires_at <= now)
    )


def upload_lookup(db: Database) -> Callable[[str, str], Awaitable[bytes | None]]:
    """The `uploads` seam of the skin tools (`(user_id, upload_id) -> bytes | None`) over this table, so
    `analyze_skin(image="upl_…")` reads a chat upload of the same person. `db` may open after the server
    is built: it is used only per lookup."""

    async def lookup(user_id: str, upload_id: str) -> bytes | None:
        row = await get_upload(db, user_id, upload_id, now=utcnow())
        return row.data if row is not None else None

    return lookup


async def export_user_chats(db: Database, user_id: str) -> dict[str, Any]:
    """A person's conversations in full and their uploaded photos as metadata (the bytes are theirs to
    download from the chat, not to paste into a JSON export)."""
    async with db.reading() as session:
        chats = (
            await session.execute(
                select(ChatSession)
                .where(col(ChatSession.user_id) == user_id)
                .order_by(col(ChatSession.created_at))
            )
        ).scalars()
        uploads = (
            await session.execute(
                select(ChatUpload)
                .where(col(ChatUpload.user_id) == user_id)
                .order_by(col(ChatUpload.created_at))
            )
        ).scalars()
        return {
            "chats": [c.model_dump(mode="json", exclude={"user_id", "version"}) for c in chats],
            "uploads": [u.model_dump(mode="json", exclude={"user_id", "data"}) for u in uploads],
        }


async def delete_user_chats(db: Database, user_id: str) -> dict[str, int]:
    async with db.session() as session, session.begin():
        chats = await session.execute(delete(ChatSession).where(col(ChatSession.user_id) == user_id))
        uploads = await session.execute(delete(ChatUpload).where(col(ChatUpload.user_id) == user_id))
    return {
        "chats": int(getattr(chats, "rowcount", 0) or 0),
        "uploads": int(getattr(uploads, "rowcount", 0) or 0),
    }
