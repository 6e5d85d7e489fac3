"""Time, always in UTC: the one place Shine reads the clock and repairs datetimes that lost their zone.

It imports nothing from Shine, so any module (tables, services, pages) can use it without pulling in the
database layer."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, zone-aware in UTC."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; every datetime Shine stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
