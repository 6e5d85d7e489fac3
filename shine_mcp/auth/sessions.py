"""Web sessions in the database, so every Shine process behind a load balancer shares them.

The cookie carries a random token; the table keeps its SHA-256. Sign-in always starts a new session
(the token a browser held before is revoked, so a planted cookie cannot be promoted: no fixation).
Expiry slides with use; each user holds at most `SHINE_MAX_SESSIONS` at once, the oldest ending first.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlmodel import col

from shine_mcp.auth.keys import new_id, token_hash
from shine_mcp.clock import aware
from shine_mcp.config import Settings
from shine_mcp.store.db import Database
from shine_mcp.store.users import WebSession

_SESSIONS = WebSession.__table__  # type: ignore[attr-defined]
SLIDE_AFTER = timedelta(
    minutes=5
)  # refresh last-seen at most this often: one write per 5 minutes, not per request


def cookie_name(settings: Settings) -> str:
    # `__Host-` makes the browser refuse the cookie unless it is Secure, host-only and for path /.
    return "__Host-shine_session" if settings.base_url.startswith("https://") else "shine_session"


def cookie_secure(settings: Settings) -> bool:
    return settings.base_url.startswith("https://")


@dataclass(frozen=True)
class ActiveSession:
    id: str
    user_id: str
    guest: bool
    expires_at: datetime
    slid: bool  # the expiry moved: the cookie's Max-Age should be renewed


async def create_session(
    db: Database, settings: Settings, user_id: str, *, now: datetime, guest: bool = False
) -> tuple[str, ActiveSession]:
    """A new session for `user_id`; returns the cookie token (shown once, never stored) and the session."""
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(days=settings.session_days)
    row = WebSession(
        id=new_id("ses"),
        token_hash=token_hash(token),
        user_id=user_id,
        guest=guest,
        created_at=now,
        last_seen_at=now,
        expires_at=expires,
    )

    def insert(connection: Connection) -> None:
        # One unit of work on the writer thread (every guest chat starts here; it must not meet a lock).
        connection.execute(_SESSIONS.insert().values(**row.model_dump()))
        if not guest:
            _enforce_limit(connection, user_id, settings.max_sessions, now)
        connection.commit()

    await db.write(insert)
    return token, ActiveSession(row.id, user_id, guest, expires, slid=False)


def _enforce_limit(connection: Connection, user_id: str, limit: int, now: datetime) -> None:
    active = connection.execute(
        select(col(WebSession.id))
        .where(col(WebSession.user_id) == user_id)
        .where(col(WebSession.revoked_at).is_(None))
        .where(col(WebSession.expires_at) > now)
        .order_by(col(WebSession.last_seen_at).desc(), col(WebSession.created_at).desc())
    ).scalars()
    surplus = list(active)[limit:]
    if surplus:
        connection.execute(update(WebSession).where(col(WebSession.id).in_(surplus)).values(revoked_at=now))


async def resolve_session(
    db: Database, settings: Settings, token: str | None, *, now: datetime, slide: bool = True
) -> ActiveSession | None:
    """The live session a cookie token names, with its expiry slid forward when `slide`."""
    if not token or len(token) > 200:
        return None
    async with db.reading() as session:
        row = (
            await session.execute(select(WebSession).where(col(WebSession.token_hash) == token_hash(token)))
        ).scalar_one_or_none()
        if row is None or row.revoked_at is not None or aware(row.expires_at) <= now:
            return None
        expires, slid = aware(row.expires_at), False
        if slide and now - aware(row.last_seen_at) >= SLIDE_AFTER:
            expires, slid = now + timedelta(days=settings.session_days), True
            await session.execute(
                update(WebSession)
                .where(col(WebSession.id) == row.id)
                .values(last_seen_at=now, expires_at=expires)
            )
            await session.commit()
        return ActiveSession(row.id, row.user_id, row.guest, expires, slid)


async def revoke_session(db: Database, session_id: str, *, now: datetime) -> None:
    async with db.session() as session:
        await session.execute(
            update(WebSession)
            .where(col(WebSession.id) == session_id)
            .where(col(WebSession.revoked_at).is_(None))
            .values(revoked_at=now)
        )
        await session.commit()


async def revoke_user_sessions(db: Database, user_id: str, *, now: datetime) -> int:
    """End every session of a user ("sign out everywhere", or their account being deleted)."""
    async with db.session() as session:
        result = await session.execute(
            update(WebSession)
            .where(col(WebSession.user_id) == user_id)
            .where(col(WebSession.revoked_at).is_(None))
            .values(revoked_at=now)
        )
        await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
