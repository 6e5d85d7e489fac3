"""Stored skin reports: one row per analysis, metrics only (never pixels), and the queries on them.

Every query takes the caller's `user_id` and filters by it: another person's report does not exist
for you. The photo a person chose to keep lives on disk (`shine_mcp.store.photos`); the row holds
only its path relative to `SHINE_DATA_DIR`.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy import JSON, Column, DateTime, Index, and_, func, or_
from sqlalchemy import delete as sa_delete
from sqlmodel import Field, SQLModel, col, select

from shine_mcp.clock import aware, utcnow
from shine_mcp.store.db import Database
from shine_mcp.store.photos import PhotoStore

REPORT_PREFIX = "rep_"


def new_report_id() -> str:
    return REPORT_PREFIX + secrets.token_hex(12)


class SkinReportRecord(SQLModel, table=True):
    """One analysis of one photo, as the JSON the tool returned (an `Analysis`), for one person."""

    __tablename__ = "skin_reports"
    __table_args__ = (Index("ix_skin_reports_user_id_created_at", "user_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)  # "rep_" + 24 hex
    user_id: str = Field(max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    analysis: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # metrics, gates, face box
    # {model name: sha256} of the models that made it: reports from different models compare weakly
    model_hashes: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    photo_path: str | None = Field(default=None, max_length=300)  # relative to SHINE_DATA_DIR

    @property
    def created(self) -> datetime:
        return aware(self.created_at)


async def add_report(db: Database, record: SkinReportRecord) -> SkinReportRecord:
    async with db.session() as session, session.begin():
        session.add(record)
    return record


async def get_report(db: Database, user_id: str, report_id: str) -> SkinReportRecord | None:
    async with db.reading() as session:
        rows = await session.execute(
            select(SkinReportRecord).where(
                SkinReportRecord.id == report_id, SkinReportRecord.user_id == user_id
            )
        )
        return rows.scalars().first()


async def list_reports(
    db: Database, user_id: str, limit: int, before: tuple[datetime, str] | None = None
) -> list[SkinReportRecord]:
    """Newest first; `before` (created_at, id) of the last report of the previous page continues it."""
    query = select(SkinReportRecord).where(SkinReportRecord.user_id == user_id)
    if before is not None:
        at, report_id = before
        query = query.where(
            or_(
                col(SkinReportRecord.created_at) < at,
                and_(col(SkinReportRecord.created_at) == at, col(SkinReportRecord.id) < report_id),
            )
        )
    query = query.order_by(col(SkinReportRecord.created_at).desc(), col(SkinReportRecord.id).desc())
    async with db.reading() as session:
        rows = await session.execute(query.limit(limit))
        return list(rows.scalars())


async def count_reports(db: Database, user_id: str) -> int:
    async with db.reading() as session:
        rows = await session.execute(
            select(func.count()).select_from(SkinReportRecord).where(SkinReportRecord.user_id == user_id)
        )
        return int(rows.scalar_one())


async def delete_report(
    db: Database,
    user_id: str,
    report_id: str,
    before_commit: Callable[[SkinReportRecord], Awaitable[None]] | None = None,
) -> SkinReportRecord | None:
    """Delete one report; None when this user has no such report.

    `before_commit` runs inside the transaction (deleting the kept photo): if it fails, the row stays,
    so a report never outlives its photo's deletion silently and a photo is never orphaned."""
    async with db.session() as session, session.begin():
        rows = await session.execute(
            select(SkinReportRecord).where(
                SkinReportRecord.id == report_id, SkinReportRecord.user_id == user_id
            )
        )
        record = rows.scalars().first()
        if record is None:
            return None
        await session.delete(record)
        await session.flush()
        if before_commit is not None:
            await before_commit(record)
    return record


async def delete_user_reports(db: Database, photos: PhotoStore, user_id: str) -> int:
    """A person's data-deletion request, for skin analysis: every report and every kept photo (the whole
    photo folder, so nothing a failed earlier deletion left behind survives, and each file a report names
    wherever it lies, e.g. in the folder of a guest id merged before photos moved). Returns the reports
    deleted."""
    async with db.session() as session, session.begin():
        named = await session.execute(
            select(SkinReportRecord.photo_path).where(
                col(SkinReportRecord.user_id) == user_id, col(SkinReportRecord.photo_path).is_not(None)
            )
        )
        paths = [path for path in named.scalars() if path]
        deleted = await session.execute(
            sa_delete(SkinReportRecord).where(col(SkinReportRecord.user_id) == user_id)
        )

        def remove_files() -> None:
            for path in paths:
                with contextlib.suppress(ValueError):  # a path outside the photos folder names no photo
                    photos.delete(path)
            photos.delete_user(user_id)

        await anyio.to_thread.run_sync(remove_files)
    return int(getattr(deleted, "rowcount", 0) or 0)
