"""Premium memberships' facts and the provider's events that move them: what a membership's status, plan and
premium are, derived only from facts that move forward (so replays and any delivery order give the same
membership). What a shopper does with a membership lives in `shine_mcp.orders.membership`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import update
from sqlalchemy.engine import Connection
from sqlmodel import col, select

from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.integrations.billing import items_of
from shine_mcp.money import from_stripe_amount
from shine_mcp.orders.subscriptions import METADATA_KEY as REFILL_KEY
from shine_mcp.orders.subscriptions import Outcome, invoice_period_end, invoice_subscription, when
from shine_mcp.store.db import Database
from shine_mcp.store.memberships import Membership, find_membership, with_zones
from shine_mcp.store.orders import record_event

Plan = Literal["monthly", "yearly"]
PLANS: tuple[Plan, ...] = ("monthly", "yearly")
INTERVAL: dict[str, str] = {"monthly": "month", "yearly": "year"}
PLAN_OF: dict[str, Plan] = {"month": "monthly", "year": "yearly"}
METADATA_KEY = "membership_id"  # Shine's mem_… id, in the metadata of the session and the subscription
RENEWAL_GRACE = timedelta(days=3)  # time for a renewal's invoice event to arrive before premium lapses
EVENTS = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    }
)
_RANK = {None: 0, "incomplete": 1, "trialing": 2, "active": 3, "past_due": 5, "unpaid": 6, "canceled": 8}
_ENDED = frozenset({"canceled", "incomplete_expired"})


class MemberStatus(StrEnum):
    INCOMPLETE = "incomplete"  # the first payment is not made yet
    ACTIVE = "active"
    PAST_DUE = "past_due"  # a renewal failed; the provider retries the card
    CANCELED = "canceled"


def benefits(settings: Settings) -> list[str]:
    """What premium gives, in the shopper's words: each one is checked in code on every request."""
    given = ["Your progress over time: how each skin measurement moved across all your skin reports."]
    if settings.premium_member_discount_percent:
        given.append(
            f"Member prices: {settings.premium_member_discount_percent} % off every order at checkout "
            "(refill subscriptions keep their own subscribe-and-save price)."
        )
    return given


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a and b else a or b


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a and b else a or b


def _id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


# --- the facts ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    at: datetime
    provider_id: str
    customer_id: str | None
    status: str
    cancel_at_period_end: bool
    current_period_end: datetime | None
    interval: str | None
    amount: int | None  # what a period of its price costs, in the provider's units

    @classmethod
    def of(cls, obj: Mapping[str, Any], at: datetime) -> Snapshot:
        items = items_of(obj)
        end = obj.get("current_period_end") or max(
            (int(i.get("current_period_end") or 0) for i in items), default=0
        )
        interval = ((items[0].get("price") or {}).get("recurring") or {}).get("interval") if items else None
        amounts = [(i.get("price") or {}).get("unit_amount") for i in items]
        amount: int | None = None
        if items and all(a is not None for a in amounts):
            amount = sum(
                int(str(a)) * int(i.get("quantity") or 1) for a, i in zip(amounts, items, strict=True)
            )
        return cls(
            at=at,
            provider_id=str(obj["id"]),
            customer_id=_id(obj.get("customer")),
            status=str(obj.get("status") or "incomplete"),
            cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
            current_period_end=when(end),
            interval=str(interval) if interval else None,
            amount=amount,
        )


def apply_snapshot(m: Membership, snapshot: Snapshot, *, deleted: bool = False) -> None:
    m.provider_subscription_id = m.provider_subscription_id or snapshot.provider_id
    m.provider_customer_id = m.provider_customer_id or snapshot.customer_id
    if deleted or snapshot.status in _ENDED:
        m.ended_at = _earlier(m.ended_at, snapshot.at)
    if snapshot.status in ("active", "trialing", "past_due"):
        m.activated_at = _earlier(m.activated_at, snapshot.at)
    newer = m.snapshot_at is None or (snapshot.at, _RANK.get(snapshot.status, 0)) >= (
        m.snapshot_at,
        _RANK.get(m.snapshot_status, 0),
    )
    if newer:
        m.snapshot_at, m.snapshot_status = snapshot.at, snapshot.status
        m.cancel_at_period_end = snapshot.cancel_at_period_end
        m.snapshot_interval = snapshot.interval or m.snapshot_interval
        if (
            snapshot.amount is not None
        ):  # the price billed now (a switch booked for the period's end included)
            m.amount_minor = from_stripe_amount(snapshot.amount, m.currency)
    m.current_period_end = _later(m.current_period_end, snapshot.current_period_end)


def status_of(m: Membership) -> MemberStatus:
    if m.ended_at is not None:
        return MemberStatus.CANCELED
    failed, paid = m.last_failed_at, m.last_paid_at
    if failed is not None and (paid is None or failed > paid):
        return MemberStatus.PAST_DUE
    if m.snapshot_status in ("past_due", "unpaid") and (paid is None or (m.snapshot_at or paid) > paid):
        return MemberStatus.PAST_DUE
    if paid is not None or m.activated_at is not None:
        return MemberStatus.ACTIVE
    return MemberStatus.INCOMPLETE


def refresh(m: Membership) -> None:
    m.status = status_of(m).value
    m.plan = PLAN_OF.get(m.snapshot_interval or "", m.plan)
    if m.pending_plan == m.plan or m.status == MemberStatus.CANCELED.value:
        m.pending_plan = None


def is_premium(m: Membership, now: datetime) -> bool:
    """Whether the membership makes its person premium at `now` (a pure function of its facts and the time)."""
    if status_of(m) not in (MemberStatus.ACTIVE, MemberStatus.PAST_DUE) or m.current_period_end is None:
        return False
    grace = timedelta(0) if m.cancel_at_period_end else RENEWAL_GRACE
    return now < m.current_period_end + grace


# --- the provider's events ------------------------------------------------------------------------------------
def membership_id_of(obj: Mapping[str, Any]) -> str | None:
    """Shine's mem_… id in a session, subscription or invoice (its parent's or its lines' metadata)."""
    found = (obj.get("metadata") or {}).get(METADATA_KEY)
    parent = (obj.get("parent") or {}).get("subscription_details") or obj.get("subscription_details") or {}
    found = found or (parent.get("metadata") or {}).get(METADATA_KEY)
    for line in (obj.get("lines") or {}).get("data") or []:
        found = found or (line.get("metadata") or {}).get(METADATA_KEY)
    return str(found) if found else None


class MembershipEvents:
    """Applies the provider's events for memberships; `Webhooks.handle` hands them over (`claims`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _target(self, type_: str, obj: Mapping[str, Any]) -> str | None:
        found = membership_id_of(obj)
        if found:
            return found
        # A refill subscription's own id in the metadata: not a membership (and no query on the hot path).
        if (obj.get("metadata") or {}).get(REFILL_KEY) or invoice_subscription(obj)[1]:
            return None
        if type_.startswith("customer.subscription."):
            provider: str | None = _id(obj.get("id"))
        elif type_.startswith("invoice."):
            provider = invoice_subscription(obj)[0]
        else:
            provider = _id(obj.get("subscription"))
        if provider is None:
            return None
        membership = await find_membership(self._db, provider_id=provider)
        return membership.id if membership else None

    async def claims(self, type_: str, obj: Mapping[str, Any]) -> bool:
        return type_ in EVENTS and await self._target(type_, obj) is not None

    async def handle(self, event_id: str, type_: str, obj: Mapping[str, Any], at: datetime) -> Outcome:
        target = await self._target(type_, obj)
        dedupe = (event_id, type_)
        if type_ == "checkout.session.completed":

            def completed(m: Membership) -> None:
                m.provider_subscription_id = m.provider_subscription_id or _id(obj.get("subscription"))
                m.provider_customer_id = m.provider_customer_id or _id(obj.get("customer"))

            return await self.change(target, completed, dedupe)
        if type_.startswith("customer.subscription."):
            snapshot = Snapshot.of(obj, at)
            deleted = type_ == "customer.subscription.deleted"
            return await self.change(target, lambda m: apply_snapshot(m, snapshot, deleted=deleted), dedupe)
        provider = invoice_subscription(obj)[0]
        if type_ == "invoice.payment_failed":

            def failed(m: Membership) -> None:
                m.provider_subscription_id = m.provider_subscription_id or provider
                m.last_failed_at = _later(m.last_failed_at, at)

            return await self.change(target, failed, dedupe)
        paid_at = when((obj.get("status_transitions") or {}).get("paid_at")) or at
        period_end = invoice_period_end(obj)

        def paid(m: Membership) -> None:
            m.provider_subscription_id = m.provider_subscription_id or provider
            m.last_paid_at = _later(m.last_paid_at, paid_at)
            m.activated_at = _earlier(m.activated_at, paid_at)
            m.current_period_end = _later(m.current_period_end, period_end)

        return await self.change(target, paid, dedupe)

    async def change(
        self, membership_id: str | None, mutate: Callable[[Membership], None], dedupe: tuple[str, str] | None
    ) -> Outcome:
        """`mutate` the membership's facts in one write transaction that records the event (a replay does
        nothing), retrying when another write got there first."""
        if membership_id is None:
            return Outcome("unknown_subscription")
        db = self._db
        for _ in range(20):
            result = await db.write(lambda c: self._write(c, str(membership_id), mutate, dedupe))
            if result is not None:
                return result
        raise RuntimeError(f"membership {membership_id} kept changing under concurrent updates")

    def _write(
        self,
        connection: Connection,
        membership_id: str,
        mutate: Callable[[Membership], None],
        dedupe: tuple[str, str] | None,
    ) -> Outcome | None:
        row = connection.execute(select(Membership).where(col(Membership.id) == membership_id)).first()
        if row is None:
            connection.rollback()
            return Outcome("unknown_subscription", membership_id)
        m = with_zones(Membership(**row._mapping))
        if dedupe is not None and not record_event(connection, "stripe", dedupe[0], dedupe[1]):
            connection.rollback()
            return Outcome("duplicate", membership_id, m.status)
        seen, original = m.lock_version, m.model_dump()
        mutate(m)
        refresh(m)
        changes = {k: v for k, v in m.model_dump().items() if v != original[k]}
        if changes:
            written = connection.execute(
                update(Membership)
                .where(col(Membership.id) == membership_id, col(Membership.lock_version) == seen)
                .values(lock_version=seen + 1, updated_at=utcnow(), **changes)
            )
            if not written.rowcount:
                connection.rollback()
                return None
        connection.commit()
        return Outcome("applied", membership_id, m.status)
