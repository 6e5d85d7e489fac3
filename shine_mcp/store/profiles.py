"""A shopper's profile and what they told us about products (ratings) or did with them (views).

Both are personal data: every row carries `user_id`, every query filters by it, and a data-deletion
request removes all of it (`delete_user_profile_data`). Carts and orders already live in their own
tables; the collaborative signal reads them there rather than copying them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from shine_mcp.clock import aware, utcnow
from shine_mcp.store.db import Database
from shine_mcp.store.generation import Generation


class Profile(SQLModel, table=True):
    """What the shopper chose to tell Shine about their skin and their limits. One row per person."""

    __tablename__ = "profiles"
    __table_args__ = (Index("ix_profiles_skin_type", "skin_type"),)

    user_id: str = Field(primary_key=True, max_length=64)
    skin_type: str | None = Field(default=None, max_length=20)
    concerns: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sensitivities: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    avoid_ingredients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    budget_minor: int | None = None  # per product, in `currency`
    currency: str | None = Field(default=None, max_length=3)
    pregnant_or_nursing: bool = False
    preferences: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    country: str | None = Field(default=None, max_length=2)  # ISO 3166-1 alpha-2
    hemisphere: str | None = Field(default=None, max_length=5)  # "north" | "south", when no country
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class ProductFeedback(SQLModel, table=True):
    """One person's explicit rating of a product, or a count of how often they opened it.

    `kind` is "rating" (1-5, with an optional comment) or "view" (`value` counts views). One row per
    (person, product, kind): rating again replaces the rating.
    """

    __tablename__ = "product_feedback"
    __table_args__ = (Index("ix_product_feedback_product_id", "product_id"),)

    user_id: str = Field(primary_key=True, max_length=64)
    product_id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(primary_key=True, max_length=10)
    value: int
    comment: str | None = Field(default=None, max_length=2000)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


_feedback_writes = Generation()


def feedback_generation() -> int:
    """Goes up with every rating or profile change in this process: collaborative caches compare it."""
    return _feedback_writes.value


PROFILE_FIELDS = (
    "skin_type",
    "concerns",
    "sensitivities",
    "avoid_ingredients",
    "budget_minor",
    "currency",
    "pregnant_or_nursing",
    "preferences",
    "country",
    "hemisphere",
)

_profiles = Profile.__table__  # type: ignore[attr-defined]
_feedback = ProductFeedback.__table__  # type: ignore[attr-defined]


def _profile_of(row: Any) -> Profile:
    return Profile.model_validate(dict(row._mapping))


async def get_profile(db: Database, user_id: str) -> Profile | None:
    def work(connection: Connection) -> Profile | None:
        row = connection.execute(select(_profiles).where(_profiles.c.user_id == user_id)).first()
        return None if row is None else _profile_of(row)

    return await db.read(work)


async def save_profile(db: Database, user_id: str, changes: dict[str, Any]) -> Profile:
    """Apply `changes` (a subset of PROFILE_FIELDS) to the person's profile, creating it if needed."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"not profile fields: {sorted(unknown)}")

    def work(connection: Connection) -> Profile:
        now = utcnow()
        exists = connection.execute(select(_profiles.c.user_id).where(_profiles.c.user_id == user_id)).first()
        if exists is None:
            fresh = Profile(user_id=user_id, created_at=now, updated_at=now, **changes)
            connection.execute(insert(_profiles).values(**fresh.model_dump()))
        else:
            connection.execute(
                update(_profiles).where(_profiles.c.user_id == user_id).values(**changes, updated_at=now)
            )
        row = connection.execute(select(_profiles).where(_profiles.c.user_id == user_id)).one()
        connection.commit()
        return _profile_of(row)

    try:
        return await db.write(work)
    finally:
        _feedback_writes.bump()


@dataclass(frozen=True)
class Rating:
    product_id: str
    rating: int
    comment: str | None
    updated_at: datetime


async def rate(db: Database, user_id: str, product_id: str, rating: int, comment: str | None) -> Rating:
    def work(connection: Connection) -> Rating:
        now = utcnow()
        key = (
            (_feedback.c.user_id == user_id)
            & (_feedback.c.product_id == product_id)
            & (_feedback.c.kind == "rating")
        )
        changed = connection.execute(
            update(_feedback).where(key).values(value=rating, comment=comment, updated_at=now)
        ).rowcount
        if not changed:
            connection.execute(
                insert(_feedback).values(
                    user_id=user_id,
                    product_id=product_id,
                    kind="rating",
                    value=rating,
                    comment=comment,
                    updated_at=now,
                )
            )
        connection.commit()
        return Rating(product_id=product_id, rating=rating, comment=comment, updated_at=now)

    try:
        return await db.write(work)
    finally:
        _feedback_writes.bump()


def _count_view(dialect: str, user_id: str, product_id: str, now: datetime) -> Any:
    """One statement that inserts the first view or adds one to the count: an update-then-insert raced
    when the same person opened a product twice at once on PostgreSQL (a duplicate key)."""
    dialect_insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    first = dialect_insert(_feedback).values(
        user_id=user_id, product_id=product_id, kind="view", value=1, updated_at=now
    )
    return first.on_conflict_do_update(
        index_elements=[_feedback.c.user_id, _feedback.c.product_id, _feedback.c.kind],
        set_={"value": _feedback.c.value + 1, "updated_at": first.excluded.updated_at},
    )


async def record_view(db: Database, user_id: str, product_id: str) -> None:
    """Implicit feedback: the person opened this product. Counted, never timestamped per view."""

    def work(connection: Connection) -> None:
        connection.execute(_count_view(connection.dialect.name, user_id, product_id, utcnow()))
        connection.commit()

    await db.write_one(work)


async def list_ratings(db: Database, user_id: str) -> list[Rating]:
    def work(connection: Connection) -> list[Rating]:
        rows = connection.execute(
            select(_feedback)
            .where((_feedback.c.user_id == user_id) & (_feedback.c.kind == "rating"))
            .order_by(_feedback.c.updated_at.desc())
        )
        return [Rating(r.product_id, r.value, r.comment, aware(r.updated_at)) for r in rows]

    return await db.read(work)


async def export_profile_data(db: Database, user_id: str) -> dict[str, Any]:
    """The profile and every feedback row of one person, JSON-ready."""

    def work(connection: Connection) -> dict[str, Any]:
        profile = connection.execute(select(_profiles).where(_profiles.c.user_id == user_id)).first()
        feedback = connection.execute(
            select(_feedback).where(_feedback.c.user_id == user_id).order_by(_feedback.c.updated_at)
        )
        return {
            "profile": None if profile is None else _profile_of(profile).model_dump(mode="json"),
            "feedback": [
                {
                    "product_id": r.product_id,
                    "kind": r.kind,
                    "value": r.value,
                    "comment": r.comment,
                    "updated_at": aware(r.updated_at).isoformat(),
                }
                for r in feedback
            ],
        }

    return await db.read(work)


async def delete_user_profile_data(db: Database, user_id: str) -> dict[str, int]:
    def work(connection: Connection) -> dict[str, int]:
        profiles = connection.execute(delete(_profiles).where(_profiles.c.user_id == user_id)).rowcount
        feedback = connection.execute(delete(_feedback).where(_feedback.c.user_id == user_id)).rowcount
        connection.commit()
        return {"profile": int(profiles or 0), "feedback": int(feedback or 0)}

    try:
        return await db.write(work)
    finally:
        _feedback_writes.bump()


LIST_FIELDS = ("concerns", "sensitivities", "avoid_ingredients", "preferences")


def merged_profile(account: Profile, guest: Profile) -> dict[str, Any]:
    """The account's profile with what the person told Shine as a guest folded in. Lists are united (an
    avoided ingredient or a sensitivity is a limit that must keep holding); a single answer stays the
    account's unless it has none; pregnancy holds if either said so."""
    changes: dict[str, Any] = {}
    for name in LIST_FIELDS:
        united: dict[str, str] = {}
        for word in [*getattr(account, name), *getattr(guest, name)]:
            united.setdefault(word.casefold(), word)  # "Lanolin" and "lanolin" are one limit
        changes[name] = list(united.values())
    if account.skin_type is None:
        changes["skin_type"] = guest.skin_type
    if account.budget_minor is None:
        changes["budget_minor"], changes["currency"] = guest.budget_minor, guest.currency
    if account.country is None and account.hemisphere is None:
        changes["country"], changes["hemisphere"] = guest.country, guest.hemisphere
    changes["pregnant_or_nursing"] = account.pregnant_or_nursing or guest.pregnant_or_nursing
    return changes


async def merge_profile_data(session: AsyncSession, from_id: str, to_id: str) -> dict[str, int]:
    """Inside the caller's transaction: make `from_id`'s profile and feedback `to_id`'s (a guest signing
    in). Where both have a row, they are combined: the profile by `merged_profile`, view counts added,
    the newer rating kept. Nothing stays under `from_id`. Returns the rows taken over, by table."""
    moved = {"profiles": 0, "product_feedback": 0}
    rows = await session.execute(select(_profiles).where(_profiles.c.user_id.in_([from_id, to_id])))
    found = {row.user_id: _profile_of(row) for row in rows}
    guest, account = found.get(from_id), found.get(to_id)
    if guest is not None:
        if account is None:
            await session.execute(
                update(_profiles).where(_profiles.c.user_id == from_id).values(user_id=to_id)
            )
        else:
            changes = merged_profile(account, guest)
            await session.execute(
                update(_profiles).where(_profiles.c.user_id == to_id).values(**changes, updated_at=utcnow())
            )
            await session.execute(delete(_profiles).where(_profiles.c.user_id == from_id))
        moved["profiles"] = 1
    theirs = list(await session.execute(select(_feedback).where(_feedback.c.user_id == from_id)))
    for row in theirs:
        key = (
            (_feedback.c.user_id == to_id)
            & (_feedback.c.product_id == row.product_id)
            & (_feedback.c.kind == row.kind)
        )
        mine = (await session.execute(select(_feedback).where(key))).first()
        if mine is None:
            await session.execute(
                update(_feedback)
                .where(
                    (_feedback.c.user_id == from_id)
                    & (_feedback.c.product_id == row.product_id)
                    & (_feedback.c.kind == row.kind)
                )
                .values(user_id=to_id)
            )
        elif row.kind == "view":
            latest = max(aware(row.updated_at), aware(mine.updated_at))
            await session.execute(
                update(_feedback).where(key).values(value=mine.value + row.value, updated_at=latest)
            )
        elif aware(row.updated_at) > aware(mine.updated_at):
            await session.execute(
                update(_feedback)
                .where(key)
                .values(value=row.value, comment=row.comment, updated_at=row.updated_at)
            )
        moved["product_feedback"] += 1
    await session.execute(delete(_feedback).where(_feedback.c.user_id == from_id))
    _feedback_writes.bump()
    return {name: count for name, count in moved.items() if count}


async def count_feedback(db: Database) -> int:
    def work(connection: Connection) -> int:
        return int(connection.execute(select(func.count()).select_from(_feedback)).scalar_one())

    return await db.read(work)
