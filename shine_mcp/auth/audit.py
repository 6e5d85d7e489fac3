"""The audit log: append an event, read events back. Callers pass facts, never secrets or personal
content (no tokens, codes, cookies, tool arguments or email bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlmodel import col

from shine_mcp.auth.keys import new_id
from shine_mcp.clock import utcnow
from shine_mcp.store.db import Database
from shine_mcp.store.users import AuditEvent

Action = Literal[
    "sign_in",
    "sign_in_failed",
    "sign_out",
    "session_revoked",
    "client_registered",
    "consent_granted",
    "consent_denied",
    "token_issued",
    "token_refreshed",
    "token_revoked",
    "refresh_token_reused",
    "code_replayed",
    "guest_merged",
    "admin_action",
    "data_deleted",
]

_SECRET_WORDS = ("token", "secret", "password", "code", "cookie", "verifier", "nonce")


def _scrub(detail: dict[str, Any]) -> dict[str, Any]:
    # A last guard: a key that names a secret never reaches the table, whatever a caller passes.
    return {k: v for k, v in detail.items() if not any(w in k.lower() for w in _SECRET_WORDS)}


async def record(
    db: Database,
    action: Action,
    *,
    actor_id: str | None = None,
    client_id: str | None = None,
    ip: str | None = None,
    at: datetime | None = None,
    **detail: Any,
) -> None:
    """Append one event in its own transaction (an audit entry must survive the caller's rollback)."""
    async with db.session() as session:
        session.add(
            AuditEvent(
                id=new_id("aud"),
                at=at or utcnow(),
                action=action,
                actor_id=actor_id,
                client_id=client_id,
                ip=ip,
                detail=_scrub(detail),
            )
        )
        await session.commit()


async def events(
    db: Database, *, actor_id: str | None = None, action: str | None = None, limit: int = 100
) -> list[AuditEvent]:
    """The newest events first, optionally for one actor or one action."""
    query = select(AuditEvent).order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc()).limit(limit)
    if actor_id is not None:
        query = query.where(col(AuditEvent.actor_id) == actor_id)
    if action is not None:
        query = query.where(col(AuditEvent.action) == action)
    async with db.reading() as session:
        return list((await session.execute(query)).scalars())
