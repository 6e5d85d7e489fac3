"""Refill subscriptions: their status derived from the provider's events, and each paid invoice an order.

As for orders (`shine_mcp.orders.machine`), an event never moves a subscription from one status to another:
it adds facts, and the status is computed from them. The facts only move forward (the newest subscription
object by its event's time, the latest paid and failed invoice, the end), so the same events in any order,
or twice, leave the same row:

- `customer.subscription.created/updated/deleted`: the subscription object (status, pause, cancel at period
  end, period end) replaces the one kept when it is newer; `deleted` also records the end.
- `checkout.session.completed` (mode=subscription): the provider's subscription and customer ids, the
  shopper's email and shipping address.
- `invoice.paid`: the subscription is paid up to the invoice's period; the invoice becomes an order (its id
  derived from the invoice id, so there is only ever one) that is paid through the ledger and so goes to
  fulfilment exactly once, with the event recorded in the same transaction.
- `invoice.payment_failed`: past due until a later invoice is paid (the provider retries it).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Connection
from sqlmodel import col, select

from shine_mcp.money import from_stripe_amount
from shine_mcp.orders import machine
from shine_mcp.orders.ledger import Ledger
from shine_mcp.store.db import Database
from shine_mcp.store.orders import Order, OrderLine, insert_order, record_event
from shine_mcp.store.subscriptions import (
    Subscription,
    find_subscription,
    get_subscription,
    with_zones,
)
from shine_mcp.store.tables import utcnow

log = logging.getLogger("shine.subscriptions")

EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    }
)
METADATA_KEY = "subscription_id"  # Shine's sub_… id, in the metadata of the session and the subscription


class SubStatus(StrEnum):
    INCOMPLETE = "incomplete"  # checkout not paid yet
    ACTIVE = "active"
    PAUSED = "paused"
    PAST_DUE = "past_due"  # a payment failed; the provider retries it
    CANCELED = "canceled"


# When two subscription objects carry the same time, the more final status wins (so the order they arrive in
# does not matter).
_RANK = {
    None: 0,
    "incomplete": 1,
    "trialing": 2,
    "active": 3,
    "paused": 4,
    "past_due": 5,
    "unpaid": 6,
    "incomplete_expired": 7,
    "canceled": 8,
}
_ENDED = frozenset({"canceled", "incomplete_expired"})


def when(epoch: Any) -> datetime | None:
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else None


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return min(a, b)


def _id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


# --- what a provider's object says -----------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """A subscription object as the provider sent it at `at`."""

    at: datetime
    provider_id: str
    customer_id: str | None
    status: str
    paused: bool  # collection paused with no date to resume
    skip_until: datetime | None  # collection paused until then: the deliveries before it are skipped
    cancel_at_period_end: bool
    current_period_end: datetime | None
    shine_id: str | None

    @classmethod
    def of(cls, obj: Mapping[str, Any], at: datetime) -> Snapshot:
        pause = obj.get("pause_collection") or {}
        items = ((obj.get("items") or {}).get("data")) or []
        # Newer API versions keep the period on each item; older ones on the subscription.
        period_end = obj.get("current_period_end") or max(
            (int(i.get("current_period_end") or 0) for i in items), default=0
        )
        return cls(
            at=at,
            provider_id=str(obj["id"]),
            customer_id=_id(obj.get("customer")),
            status=str(obj.get("status") or "incomplete"),
            paused=bool(pause) and not pause.get("resumes_at"),
            skip_until=when(pause.get("resumes_at")) if pause else None,
            cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
            current_period_end=when(period_end),
            shine_id=(obj.get("metadata") or {}).get(METADATA_KEY),
        )


def newer(snapshot: Snapshot, sub: Subscription) -> bool:
    if sub.snapshot_at is None:
        return True
    return (snapshot.at, _RANK.get(snapshot.status, 0)) >= (
        sub.snapshot_at,
        _RANK.get(sub.snapshot_status, 0),
    )


def apply_snapshot(sub: Subscription, snapshot: Snapshot, *, deleted: bool = False) -> None:
    sub.provider_subscription_id = sub.provider_subscription_id or snapshot.provider_id
    sub.provider_customer_id = sub.provider_customer_id or snapshot.customer_id
    sub.current_period_end = _later(sub.current_period_end, snapshot.current_period_end)
    if deleted or snapshot.status in _ENDED:
        sub.ended_at = _earlier(sub.ended_at, snapshot.at)
    if snapshot.status in ("active", "trialing", "past_due", "paused"):
        sub.activated_at = _earlier(sub.activated_at, snapshot.at)
    if newer(snapshot, sub):
        sub.snapshot_at, sub.snapshot_status = snapshot.at, snapshot.status
        sub.paused, sub.skip_until = snapshot.paused, snapshot.skip_until
        sub.cancel_at_period_end = snapshot.cancel_at_period_end


def status_of(sub: Subscription) -> SubStatus:
    """The status the facts give (a pure function of the row's fact columns)."""
    if sub.ended_at is not None:
        return SubStatus.CANCELED
    if sub.paused or sub.snapshot_status == "paused":
        return SubStatus.PAUSED
    failed, paid = sub.last_failed_at, sub.last_paid_at
    if failed is not None and (paid is None or failed > paid):
        return SubStatus.PAST_DUE
    if sub.snapshot_status in ("past_due", "unpaid") and (paid is None or (sub.snapshot_at or paid) > paid):
        return SubStatus.PAST_DUE
    if paid is not None or sub.activated_at is not None:
        return SubStatus.ACTIVE
    return SubStatus.INCOMPLETE


def next_delivery_of(sub: Subscription) -> datetime | None:
    """When the next refill is billed and sent: the end of the paid period, or the end of a skip."""
    status = status_of(sub)
    if status in (SubStatus.CANCELED, SubStatus.PAUSED, SubStatus.INCOMPLETE) or sub.cancel_at_period_end:
        return None
    end = sub.current_period_end
    if end is not None and sub.skip_until is not None:
        step = timedelta(weeks=max(1, sub.interval_weeks))
        for _ in range(60):  # the first billing date once the skip is over
            if end >= sub.skip_until:
                break
            end += step
    return end


def refresh(sub: Subscription) -> None:
    sub.status = status_of(sub).value
    sub.next_delivery = next_delivery_of(sub)


# --- invoices ----------------------------------------------------------------------------------------------
def invoice_subscription(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(the provider's subscription id, Shine's sub_… id) an invoice names, in old and new API shapes."""
    parent = (obj.get("parent") or {}).get("subscription_details") or obj.get("subscription_details") or {}
    provider = _id(parent.get("subscription") or obj.get("subscription"))
    shine = (parent.get("metadata") or {}).get(METADATA_KEY)
    if shine is None:
        for line in (obj.get("lines") or {}).get("data") or []:
            shine = (line.get("metadata") or {}).get(METADATA_KEY) or shine
    return provider, shine


def invoice_period_end(obj: Mapping[str, Any]) -> datetime | None:
    ends = [
        int((line.get("period") or {}).get("end") or 0) for line in (obj.get("lines") or {}).get("data") or []
    ]
    return when(max(ends, default=0))


def invoice_order_id(invoice_id: str) -> str:
    """The one order an invoice becomes: derived from the invoice id, so a second delivery finds it."""
    return "ord_" + hashlib.sha256(f"invoice:{invoice_id}".encode()).hexdigest()[:20]


def _invoice_version(invoice_id: str) -> int:
    # Orders are unique per (cart, version): a subscription's orders use its id and one number per invoice.
    return int(hashlib.sha256(invoice_id.encode()).hexdigest()[:7], 16)


@dataclass(frozen=True)
class Outcome:
    outcome: str  # applied | duplicate | unknown_subscription
    subscription_id: str | None = None
    status: str | None = None
    order_id: str | None = None


class SubscriptionEvents:
    """Applies the provider's subscription events; `Webhooks.handle` calls it after verifying them."""

    def __init__(
        self,
        db: Callable[[], Database],
        ledger: Ledger,
        *,
        base_url: Callable[[], str],
        gateway_kind: Callable[[], str],
    ) -> None:
        self._db, self._ledger, self._base_url, self._kind = db, ledger, base_url, gateway_kind

    async def handle(self, event_id: str, type_: str, obj: Mapping[str, Any], at: datetime) -> Outcome:
        if type_ == "checkout.session.completed":
            return await self._session_completed(event_id, type_, obj)
        if type_.startswith("customer.subscription."):
            snapshot = Snapshot.of(obj, at)
            sub = await find_subscription(self._db(), provider_id=snapshot.provider_id)
            sub_id = sub.id if sub else snapshot.shine_id
            deleted = type_ == "customer.subscription.deleted"
            return await self.change(
                sub_id, lambda s: apply_snapshot(s, snapshot, deleted=deleted), (event_id, type_)
            )
        provider, shine = invoice_subscription(obj)
        sub = await find_subscription(self._db(), provider_id=provider) if provider else None
        sub_id = sub.id if sub else shine
        paid_at = when((obj.get("status_transitions") or {}).get("paid_at")) or at
        if type_ == "invoice.payment_failed":

            def failed(s: Subscription) -> None:
                s.provider_subscription_id = s.provider_subscription_id or provider
                s.last_failed_at = _later(s.last_failed_at, at)

            return await self.change(sub_id, failed, (event_id, type_))
        if type_ == "invoice.paid":
            return await self._invoice_paid(event_id, type_, obj, sub_id, provider, paid_at)
        raise AssertionError(f"unhandled {type_}")

    async def _session_completed(self, event_id: str, type_: str, obj: Mapping[str, Any]) -> Outcome:
        metadata = obj.get("metadata") or {}
        sub_id = obj.get("client_reference_id") or metadata.get(METADATA_KEY)
        if sub_id is None and obj.get("id"):
            found = await find_subscription(self._db(), session_id=str(obj["id"]))
            sub_id = found.id if found else None
        details = obj.get("customer_details") or {}
        collected = (obj.get("collected_information") or {}).get("shipping_details") or obj.get(
            "shipping_details"
        )

        def completed(s: Subscription) -> None:
            s.provider_subscription_id = s.provider_subscription_id or _id(obj.get("subscription"))
            s.provider_customer_id = s.provider_customer_id or _id(obj.get("customer"))
            s.email = s.email or details.get("email") or obj.get("customer_email")
            if collected and not s.shipping:
                s.shipping = {"name": collected.get("name"), "address": dict(collected.get("address") or {})}

        return await self.change(sub_id, completed, (event_id, type_))

    async def change(
        self,
        sub_id: str | None,
        mutate: Callable[[Subscription], None],
        dedupe: tuple[str, str] | None = None,
    ) -> Outcome:
        """Apply `mutate` to the subscription's facts in one write transaction (recording the event in it, so
        a replay does nothing), retrying when another write got there first."""
        if sub_id is None:
            return Outcome("unknown_subscription")
        db = self._db()
        for _ in range(20):
            result = await db.write(lambda connection: self._write(connection, str(sub_id), mutate, dedupe))
            if result is not None:
                return result
        raise RuntimeError(f"subscription {sub_id} kept changing under concurrent updates")

    def _write(
        self,
        connection: Connection,
        sub_id: str,
        mutate: Callable[[Subscription], None],
        dedupe: tuple[str, str] | None,
    ) -> Outcome | None:
        row = connection.execute(select(Subscription).where(col(Subscription.id) == sub_id)).first()
        if row is None:
            connection.rollback()
            return Outcome("unknown_subscription", sub_id)
        sub = with_zones(Subscription(**row._mapping))
        if dedupe is not None and not record_event(connection, "stripe", dedupe[0], dedupe[1]):
            connection.rollback()
            return Outcome("duplicate", sub_id, sub.status)
        seen, original = sub.lock_version, sub.model_dump()
        mutate(sub)
        refresh(sub)
        changes = {k: v for k, v in sub.model_dump().items() if v != original[k]}
        if changes:
            changes["updated_at"] = utcnow()
            written = connection.execute(
                update(Subscription)
                .where(col(Subscription.id) == sub_id, col(Subscription.lock_version) == seen)
                .values(lock_version=seen + 1, **changes)
            )
            if not written.rowcount:
                connection.rollback()
                return None
        connection.commit()
        return Outcome("applied", sub_id, sub.status)

    async def _invoice_paid(
        self,
        event_id: str,
        type_: str,
        obj: Mapping[str, Any],
        sub_id: str | None,
        provider: str | None,
        paid_at: datetime,
    ) -> Outcome:
        if sub_id is None:
            return Outcome("unknown_subscription")
        period_end = invoice_period_end(obj)

        def paid(s: Subscription) -> None:
            s.provider_subscription_id = s.provider_subscription_id or provider
            s.last_paid_at = _later(s.last_paid_at, paid_at)
            s.activated_at = _earlier(s.activated_at, paid_at)
            s.current_period_end = _later(s.current_period_end, period_end)

        # The facts first (without the event id: they are the same however often they are applied), then
        # the order, whose transaction records the event: a failure in between is redelivered and finishes.
        facts = await self.change(sub_id, paid)
        if facts.outcome != "applied":
            return facts
        sub = await get_subscription(self._db(), sub_id)
        assert sub is not None
        invoice_id = str(obj["id"])
        order = await self._order_for(sub, invoice_id, obj, paid_at)
        currency = str(obj.get("currency") or sub.currency).upper()
        applied = await self._ledger.apply(
            order.id,
            machine.Paid(
                at=paid_at,
                payment_intent=_id(obj.get("payment_intent")),
                amount_total=from_stripe_amount(int(obj.get("amount_paid") or 0), currency),
                currency=currency,
                email=sub.email,
                shipping=sub.shipping,
            ),
            dedupe=("stripe", event_id, type_),
        )
        if applied.duplicate:
            return Outcome("duplicate", sub.id, sub.status, order.id)
        return Outcome("applied", sub.id, sub.status, order.id)

    async def _order_for(
        self, sub: Subscription, invoice_id: str, obj: Mapping[str, Any], paid_at: datetime
    ) -> Order:
        """The invoice's order: its lines are the subscription's items at the subscription's prices, its
        total what they come to (a different amount paid holds it for the merchant, as for any order)."""
        order_id = invoice_order_id(invoice_id)
        lines = [
            OrderLine(
                order_id=order_id,
                position=i,
                product_id=item["product_id"],
                variant_id=item.get("variant_id"),
                brand=item.get("brand") or "",
                name=item.get("name") or "",
                unit_price_minor=int(item["unit_price_minor"]),
                quantity=int(item["quantity"]),
            )
            for i, item in enumerate(sub.items)
        ]
        page = f"{self._base_url()}/checkout/success?subscription_id={sub.id}"
        order = Order(
            id=order_id,
            user_id=sub.user_id,
            cart_id=sub.id,
            cart_version=_invoice_version(invoice_id),
            gateway=sub.gateway,
            status=machine.Status.PENDING.value,
            currency=sub.currency,
            total_minor=sum(line.unit_price_minor * line.quantity for line in lines),
            email=sub.email,
            success_url=page,
            cancel_url=page,
            created_at=paid_at,
            updated_at=paid_at,
        )
        await insert_order(self._db(), order, lines)  # False: the invoice's order exists already
        return order
