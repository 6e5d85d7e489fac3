"""Refill subscriptions ("subscribe and save"): the `subscriptions` table and its small queries.

A subscription is a list of product variants delivered every `interval_weeks`, paid by a recurring Stripe
subscription (or the simulated gateway's). Its `status` is derived from facts the provider's events carry
(`shine_mcp.orders.subscriptions`), and stored for filtering; the rules live there, this module only reads
and writes rows. Every row carries its shopper's `user_id`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
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
    "next_delivery",
    "skip_until",
)


class Subscription(SQLModel, table=True):
    """`items`: [{product_id, variant_id, brand, name, quantity, unit_price_minor}] with the discounted unit
    price charged each period. The fact columns (`snapshot_*`, `*_at`) only ever move forward, so events
    applied in any order leave the same row (see `shine_mcp.orders.subscriptions.merge`)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("provider_subscription_id", name="uq_subscriptions_provider_subscription_id"),
        UniqueConstraint("checkout_session_id", name="uq_subscriptions_checkout_session_id"),
        Index("ix_subscriptions_user_id_created_at", "user_id", "created_at"),
        Index("ix_subscriptions_status", "status"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "sub_…"
    user_id: str = Field(max_length=64)
    gateway: str = Field(max_length=20)  # "stripe" | "simulated"
    status: str = Field(max_length=20)  # incomplete | active | paused | past_due | canceled
    currency: str = Field(max_length=3)
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    interval_weeks: int
    discount_percent: int = 0
    email: str | None = Field(default=None, max_length=320)
    shipping: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    checkout_session_id: str | None = Field(default=None, max_length=255)
    checkout_url: str | None = Field(default=None, max_length=2000)
    provider_subscription_id: str | None = Field(default=None, max_length=255)
    provider_customer_id: str | None = Field(default=None, max_length=255)
    # The newest subscription object the provider sent (by its event's time): status and settings.
    snapshot_at: datetime | None = moment_field()
    snapshot_status: str | None = Field(default=None, max_length=30)
    cancel_at_period_end: bool = False
    paused: bool = False
    skip_until: datetime | None = moment_field()  # deliveries before this are skipped
    current_period_end: datetime | None = moment_field()
    next_delivery: datetime | None = moment_field()
    # Facts from invoices and the end of the subscription: each only moves forward.
    activated_at: datetime | None = moment_field()
    last_paid_at: datetime | None = moment_field()
    last_failed_at: datetime | None = moment_field()
    ended_at: datetime | None = moment_field()
    lock_version: int = 0
    created_at: datetime = created_field()
    updated_at: datetime = created_field()


def with_zones(sub: Subscription) -> Subscription:
    return with_utc(sub, DATES)


async def get_subscription(db: Database, sub_id: str, user_id: str | None = None) -> Subscription | None:
    """One subscription; with `user_id`, only if it is theirs (another person's does not exist for them)."""
    async with db.reading() as session:
        query = select(Subscription).where(col(Subscription.id) == sub_id)
        if user_id is not None:
            query = query.where(col(Subscription.user_id) == user_id)
        found = (await session.execute(query)).scalars().first()
    return with_zones(found) if found else None


async def find_subscription(
    db: Database, *, provider_id: str | None = None, session_id: str | None = None
) -> Subscription | None:
    if provider_id is None and session_id is None:
        return None
    query = select(Subscription)
    if provider_id is not None:
        query = query.where(col(Subscription.provider_subscription_id) == provider_id)
    if session_id is not None:
        query = query.where(col(Subscription.checkout_session_id) == session_id)
    async with db.reading() as session:
        found = (await session.execute(query)).scalars().first()
    return with_zones(found) if found else None


async def list_subscriptions(db: Database, user_id: str, limit: int = 50) -> list[Subscription]:
    query = (
        select(Subscription)
        .where(col(Subscription.user_id) == user_id)
        .order_by(col(Subscription.created_at).desc())
        .limit(limit)
    )
    async with db.reading() as session:
        return [with_zones(s) for s in (await session.execute(query)).scalars().all()]


async def due_subscriptions(db: Database, now: datetime, limit: int = 500) -> list[Subscription]:
    """Subscriptions whose paid period has ended by `now` (the simulated clock bills them)."""
    query = (
        select(Subscription)
        .where(
            col(Subscription.current_period_end) <= now,
            col(Subscription.ended_at).is_(None),
            col(Subscription.provider_subscription_id).is_not(None),
        )
        .limit(limit)
    )
    async with db.reading() as session:
        return [with_zones(s) for s in (await session.execute(query)).scalars().all()]


async def started_before(db: Database, moment: datetime) -> list[Subscription]:
    """Every subscription whose first period was paid before `moment` (the sales report's subscriptions)."""
    query = select(Subscription).where(
        col(Subscription.activated_at).is_not(None), col(Subscription.activated_at) < moment
    )
    async with db.reading() as session:
        return [with_zones(s) for s in (await session.execute(query)).scalars().all()]


async def insert_subscription(db: Database, sub: Subscription) -> None:
    async with db.session() as session:
        session.add(sub)
        await session.commit()


class SimulatedSubscription(SQLModel, table=True):
    """A subscription of the simulated gateway, as Stripe would hold it (`data` is the subscription object:
    ids, prices and periods, nothing that names the shopper)."""

    __tablename__ = "simulated_subscriptions"

    id: str = Field(primary_key=True, max_length=255)  # "sub_sim_…"
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = created_field()


class SimulatedSubscriptions:
    """Where the simulated gateway keeps its subscriptions."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, data: dict[str, Any]) -> dict[str, Any]:
        """Store a new subscription, or return the one already stored under its id."""
        async with self._db.session() as session:
            row = await session.get(SimulatedSubscription, data["id"])
            if row is not None:
                return dict(row.data)
            session.add(SimulatedSubscription(id=data["id"], data=data))
            await session.commit()
        return data

    async def get(self, sub_id: str) -> dict[str, Any] | None:
        async with self._db.reading() as session:
            row = await session.get(SimulatedSubscription, sub_id)
            return dict(row.data) if row else None

    async def save(self, data: dict[str, Any]) -> None:
        async with self._db.session() as session:
            row = await session.get(SimulatedSubscription, data["id"])
            assert row is not None
            row.data = data
            await session.commit()

    async def all(self) -> list[dict[str, Any]]:
        async with self._db.reading() as session:
            rows = (await session.execute(select(SimulatedSubscription))).scalars().all()
        return [dict(row.data) for row in rows]
