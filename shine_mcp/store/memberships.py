"""Premium memberships: the `memberships` table and its small queries.

A membership is a monthly or yearly Stripe subscription (or the simulated gateway's) that makes its person a
premium member while it runs. Its status is derived from facts the provider's events carry
(`shine_mcp.orders.membership`); this module only reads and writes rows. Every row carries its `user_id`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel, col, select

from shine_mcp.store.db import Database
from shine_mcp.store.tables import created_field, moment_field, with_utc

DATES = (
    "created_at",
    "updated_at",
    "snapshot_at",
    "activated_at",
    "last_paid_at",
    "last_failed_at",
    "ended_at",
    "current_period_end",
)


class Membership(SQLModel, table=True):
    """`plan` is the plan being billed now (from the newest subscription object); `pending_plan` a plan booked
    for the end of the period (a downgrade). The fact columns only ever move forward, so events applied in any
    order leave the same row."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("provider_subscription_id", name="uq_memberships_provider_subscription_id"),
        UniqueConstraint("checkout_session_id", name="uq_memberships_checkout_session_id"),
        Index("ix_memberships_user_id_created_at", "user_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "mem_…"
    user_id: str = Field(max_length=64)
    gateway: str = Field(max_length=20)  # "stripe" | "simulated"
    status: str = Field(max_length=20)  # incomplete | active | past_due | canceled
    plan: str = Field(max_length=10)  # monthly | yearly
    pending_plan: str | None = Field(default=None, max_length=10)
    currency: str = Field(max_length=3)
    amount_minor: int  # the price of `plan` (ISO minor units): as chosen, then as the newest subscription object bills it
    checkout_session_id: str | None = Field(default=None, max_length=255)
    checkout_url: str | None = Field(default=None, max_length=2000)
    provider_subscription_id: str | None = Field(default=None, max_length=255)
    provider_customer_id: str | None = Field(default=None, max_length=255)
    snapshot_at: datetime | None = moment_field()
    snapshot_status: str | None = Field(default=None, max_length=30)
    snapshot_interval: str | None = Field(default=None, max_length=10)  # month | year
    cancel_at_period_end: bool = False
    current_period_end: datetime | None = moment_field()
    activated_at: datetime | None = moment_field()
    last_paid_at: datetime | None = moment_field()
    last_failed_at: datetime | None = moment_field()
    ended_at: datetime | None = moment_field()
    lock_version: int = 0
    created_at: datetime = created_field()
    updated_at: datetime = created_field()


def with_zones(membership: Membership) -> Membership:
    return with_utc(membership, DATES)


async def get_membership(db: Database, membership_id: str) -> Membership | None:
    async with db.reading() as session:
        found = await session.get(Membership, membership_id)
    return with_zones(found) if found else None


async def find_membership(db: Database, *, provider_id: str) -> Membership | None:
    query = select(Membership).where(col(Membership.provider_subscription_id) == provider_id)
    async with db.reading() as session:
        found = (await session.execute(query)).scalars().first()
    return with_zones(found) if found else None


async def memberships_of(db: Database, user_id: str, limit: int = 20) -> list[Membership]:
    """A person's memberships, newest first."""
    query = (
        select(Membership)
        .where(col(Membership.user_id) == user_id)
        .order_by(col(Membership.created_at).desc(), col(Membership.id).desc())
        .limit(limit)
    )
    async with db.reading() as session:
        return [with_zones(m) for m in (await session.execute(query)).scalars().all()]


async def insert_membership(db: Database, membership: Membership) -> None:
    async with db.session() as session:
        session.add(membership)
        await session.commit()


async def memberships_started_before(db: Database, moment: datetime) -> list[Membership]:
    """Every membership whose first period was paid before `moment` (the sales report's premium members)."""
    query = select(Membership).where(
        col(Membership.activated_at).is_not(None), col(Membership.activated_at) < moment
    )
    async with db.reading() as session:
        return [with_zones(m) for m in (await session.execute(query)).scalars().all()]
