"""Cached answers from the web (Firecrawl), keyed by the normalised arguments that produced them.

No personal data lives here: a key is a hash of the tool and its normalised arguments (a query, a URL,
the site filters), never of who asked. Entries expire after a TTL; expired ones are swept on write.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from shine_mcp.clock import utcnow
from shine_mcp.store.db import Database


class WebCacheEntry(SQLModel, table=True):
    __tablename__ = "web_cache"
    __table_args__ = (Index("ix_web_cache_expires_at", "expires_at"),)

    key: str = Field(primary_key=True, max_length=64)  # sha256 of kind + normalised arguments
    kind: str = Field(max_length=40)  # the tool the answer is for, e.g. "image_search"
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


_TABLE = WebCacheEntry.__table__  # type: ignore[attr-defined]


def cache_key(kind: str, arguments: dict[str, Any]) -> str:
    """Equal normalised arguments give equal keys, whatever their order."""
    canonical = json.dumps({"kind": kind, "arguments": arguments}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def get(db: Database, key: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The cached payload, or None when there is none or it has expired."""
    at = now or utcnow()

    def work(connection: Connection) -> dict[str, Any] | None:
        row = connection.execute(
            select(_TABLE.c.payload).where(_TABLE.c.key == key, _TABLE.c.expires_at > at)
        ).first()
        return dict(row[0]) if row is not None else None

    return await db.read(work)


async def put(
    db: Database, key: str, kind: str, payload: dict[str, Any], ttl_seconds: int, now: datetime | None = None
) -> None:
    """Store (or replace) one answer for `ttl_seconds`, and sweep expired entries on the way."""
    at = now or utcnow()
    values = {
        "key": key,
        "kind": kind,
        "payload": payload,
        "created_at": at,
        "expires_at": at + timedelta(seconds=ttl_seconds),
    }

    def work(connection: Connection) -> None:
        insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        statement = insert(_TABLE).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[_TABLE.c.key],
            set_={k: statement.excluded[k] for k in ("kind", "payload", "created_at", "expires_at")},
        )
        connection.execute(statement)
        connection.execute(delete(_TABLE).where(_TABLE.c.expires_at <= at))
        connection.commit()

    await db.write(work)
