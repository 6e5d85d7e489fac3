"""The order state machine, as plain functions with no I/O.

pending → paid → fulfilling → shipped; pending → expired / cancelled / payment_failed;
paid (or later) → partially_refunded / refunded; any paid order → disputed.

Webhooks arrive late, twice, or out of order (a refund before the payment it refunds, `completed` after
`expired`). So an event never *moves* an order from one status to another: it adds a fact (when it was
paid, how much has been refunded so far, when it shipped), facts are only ever added or raised, and the
status is computed from the facts. Applying the same events in any order gives the same order, and
applying one twice changes nothing. When facts conflict (money arrived for an order that had expired),
money wins and the order is flagged for the merchant.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FULFILLING = "fulfilling"
    SHIPPED = "shipped"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    PAYMENT_FAILED = "payment_failed"


class Hold(StrEnum):
    """Why a paid order is kept from fulfilment until the merchant decides (`Order.hold_reason`)."""

    OVERSOLD = "oversold"  # an item ran out before this payment arrived: restock and ship, or refund
    AMOUNT_MISMATCH = "amount_mismatch"  # the provider reports another amount than the order's total
    # A refill invoice paid before its checkout told the shipping address: released when the address comes.
    AWAITING_ADDRESS = "awaiting_address"


UNPAID_ENDINGS = frozenset({Status.EXPIRED, Status.CANCELLED, Status.PAYMENT_FAILED})
# A paid order whose goods should no longer leave the warehouse.
DO_NOT_SHIP = frozenset({Status.REFUNDED, Status.DISPUTED})


@dataclass(frozen=True)
class Facts:
    total_minor: int
    paid_at: datetime | None = None
    payment_failed_at: datetime | None = None
    expired_at: datetime | None = None
    cancelled_at: datetime | None = None
    fulfilling_at: datetime | None = None
    shipped_at: datetime | None = None
    disputed_at: datetime | None = None
    refund_requested_at: datetime | None = None
    amount_refunded_minor: int = 0

    @classmethod
    def of(cls, order: Any) -> Facts:
        return cls(**{name: getattr(order, name) for name in cls.__dataclass_fields__})

    @property
    def paid(self) -> bool:
        return self.paid_at is not None


def status_of(facts: Facts) -> Status:
    """Payment first: fulfilment facts (recorded whenever they arrive) only show once the order is paid."""
    if facts.disputed_at is not None:
        return Status.DISPUTED
    if facts.paid:
        if facts.amount_refunded_minor >= facts.total_minor > 0:
            return Status.REFUNDED
        if facts.amount_refunded_minor > 0:
            return Status.PARTIALLY_REFUNDED
        if facts.shipped_at is not None:
            return Status.SHIPPED
        if facts.fulfilling_at is not None:
            return Status.FULFILLING
        return Status.PAID
    if facts.cancelled_at is not None:
        return Status.CANCELLED
    if facts.expired_at is not None:
        return Status.EXPIRED
    if facts.payment_failed_at is not None:
        return Status.PAYMENT_FAILED
    return Status.PENDING


# --- events ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paid:
    at: datetime
    payment_intent: str | None = None
    session_id: str | None = None
    amount_total: int | None = None
    currency: str | None = None
    email: str | None = None
    shipping: dict[str, Any] | None = None


@dataclass(frozen=True)
class PaymentProcessing:
    """Checkout finished with a payment method that settles later (a bank debit): no money yet."""

    at: datetime
    payment_intent: str | None = None
    session_id: str | None = None
    email: str | None = None
    shipping: dict[str, Any] | None = None


@dataclass(frozen=True)
class PaymentFailed:
    at: datetime


@dataclass(frozen=True)
class Expired:
    at: datetime


@dataclass(frozen=True)
class Cancelled:
    at: datetime


@dataclass(frozen=True)
class Refunded:
    """The provider's running total of money given back (not this refund's amount): taking the maximum
    makes a replayed or late event harmless."""

    at: datetime
    total_refunded: int


@dataclass(frozen=True)
class Disputed:
    at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class FulfilmentStarted:
    at: datetime
    partner: str


@dataclass(frozen=True)
class Shipped:
    at: datetime
    tracking_number: str | None = None
    carrier: str | None = None


@dataclass(frozen=True)
class RefundRequested:
    at: datetime
    reason: str


Event = (
    Paid
    | PaymentProcessing
    | PaymentFailed
    | Expired
    | Cancelled
    | Refunded
    | Disputed
    | FulfilmentStarted
    | Shipped
    | RefundRequested
)


def _earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None else min(current, at)


def advance(facts: Facts, event: Event) -> Facts:
    """The facts after `event`: each timestamp keeps its earliest value and the refunded amount its largest,
    so `advance` commutes (any delivery order, any repetition, gives the same facts)."""
    match event:
        case Paid(at=at) | Refunded(at=at) | Disputed(at=at):
            # A refund or a dispute proves the money was taken, even before the payment's own event.
            facts = replace(facts, paid_at=_earliest(facts.paid_at, at))
    match event:
        case PaymentFailed(at=at):
            return replace(facts, payment_failed_at=_earliest(facts.payment_failed_at, at))
        case Expired(at=at):
            return replace(facts, expired_at=_earliest(facts.expired_at, at))
        case Cancelled(at=at):
            return replace(facts, cancelled_at=_earliest(facts.cancelled_at, at))
        case Refunded(total_refunded=total):
            return replace(
                facts, amount_refunded_minor=max(facts.amount_refunded_minor, min(total, facts.total_minor))
            )
        case Disputed(at=at):
            return replace(facts, disputed_at=_earliest(facts.disputed_at, at))
        case FulfilmentStarted(at=at):
            return replace(facts, fulfilling_at=_earliest(facts.fulfilling_at, at))
        case Shipped(at=at):
            return replace(
                facts,
                fulfilling_at=_earliest(facts.fulfilling_at, at),
                shipped_at=_earliest(facts.shipped_at, at),
            )
        case RefundRequested(at=at):
            return replace(facts, refund_requested_at=_earliest(facts.refund_requested_at, at))
    return facts


def can_cancel(status: Status) -> bool:
    return status is Status.PENDING


def late_payment_note(before: Facts) -> str | None:
    """What to tell the merchant when money arrives for an order that had already ended unpaid."""
    ended = status_of(before)
    if ended in UNPAID_ENDINGS:
        return f"paid after it was {ended.value.replace('_', ' ')}: fulfil it or refund it"
    return None
