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

An `invoice.paid` is one write unit: the event, the subscription's facts and its already-paid order (stock,
outbox row) commit together. When the shop collects a shipping address and the checkout's completion (which
carries it) has not arrived yet, the order is held (`Hold.AWAITING_ADDRESS`) and released to fulfilment in the
transaction that records the address.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import bindparam, or_, update
from sqlalchemy.engine import Connection
from sqlmodel import col, select

from shine_mcp.clock import utcnow
from shine_mcp.money import from_stripe_amount
from shine_mcp.orders import machine
from shine_mcp.orders.ledger import Ledger, note
from shine_mcp.store.db import Database
from shine_mcp.store.orders import Order, OrderLine, record_event
from shine_mcp.store.orders import with_zones as order_zones
from shine_mcp.store.subscriptions import Subscription, find_subscription, with_zones

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


# Constant statements with bound parameters, compiled once: every renewal runs them. A missing id is a NULL
# parameter, which matches no row.
_SUB_OF_INVOICE = select(Subscription).where(
    or_(
        col(Subscription.id) == bindparam("sub"),
        col(Subscription.provider_subscription_id) == bindparam("provider"),
    )
)
_ORDER_BY_ID = select(Order).where(col(Order.id) == bindparam("order"))
# An order's optional columns as a new order has them (the required ones are always given).
_ORDER_DEFAULTS = {
    name: field.get_default(call_default_factory=True)
    for name, field in Order.model_fields.items()
    if not field.is_required() and field.default_factory is None  # the dates are always given
}


class _Plain(SimpleNamespace):
    """A row's values as plain attributes. On the renewal path, on the one writer thread, a table model costs
    half a millisecond to build (change tracking set up per attribute), more than the statements it feeds;
    this is read and changed like one and dumped the same way, but never added to a session."""

    def model_dump(self) -> dict[str, Any]:
        return dict(vars(self))


def _plain_subscription(row: Any) -> Subscription:
    """A subscription row (its `_mapping`), with SQLite's naive datetimes made UTC as `with_zones` does."""
    return with_zones(cast(Subscription, _Plain(**row)))


def _plain_order(**values: Any) -> Order:
    """A new order's values over the columns' defaults."""
    return order_zones(cast(Order, _Plain(**{**_ORDER_DEFAULTS, **values})))


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


def invoice_payment_intent(obj: Mapping[str, Any]) -> str | None:
    """The payment intent that paid an invoice (what refunding its order refunds): `payment_intent` in older API
    versions, the paid entry of `payments` in newer ones."""
    direct = _id(obj.get("payment_intent"))
    if direct:
        return direct
    for entry in (obj.get("payments") or {}).get("data") or []:
        payment = entry.get("payment") or {}
        if entry.get("status") == "paid" and payment.get("payment_intent"):
            return _id(payment["payment_intent"])
    return None


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
        db: Database,
        ledger: Ledger,
        *,
        base_url: Callable[[], str],
        gateway_kind: Callable[[], str],
        needs_address: bool = False,
    ) -> None:
        self._db, self._ledger, self._base_url, self._kind = db, ledger, base_url, gateway_kind
        # The shop collects a shipping address at checkout: no refill goes to fulfilment without it.
        self._needs_address = needs_address

    async def handle(self, event_id: str, type_: str, obj: Mapping[str, Any], at: datetime) -> Outcome:
        if type_ == "checkout.session.completed":
            return await self._session_completed(event_id, type_, obj)
        if type_.startswith("customer.subscription."):
            snapshot = Snapshot.of(obj, at)
            sub = await find_subscription(self._db, provider_id=snapshot.provider_id)
            sub_id = sub.id if sub else snapshot.shine_id
            deleted = type_ == "customer.subscription.deleted"
            return await self.change(
                sub_id, lambda s: apply_snapshot(s, snapshot, deleted=deleted), (event_id, type_)
            )
        provider, shine = invoice_subscription(obj)
        if type_ == "invoice.paid" and obj.get("billing_reason") != "subscription_update":
            paid_at = when((obj.get("status_transitions") or {}).get("paid_at")) or at
            return await self._invoice_paid(event_id, type_, obj, provider, shine, paid_at)
        sub = await find_subscription(self._db, provider_id=provider) if provider else None
        sub_id = sub.id if sub else shine
        if type_ == "invoice.paid":  # a proration invoice (a swap part-way through a period): nothing to send

            def prorated(s: Subscription) -> None:
                s.provider_subscription_id = s.provider_subscription_id or provider

            return await self.change(sub_id, prorated, (event_id, type_))
        if type_ == "invoice.payment_failed":

            def failed(s: Subscription) -> None:
                s.provider_subscription_id = s.provider_subscription_id or provider
                s.last_failed_at = _later(s.last_failed_at, at)

            return await self.change(sub_id, failed, (event_id, type_))
        raise AssertionError(f"unhandled {type_}")

    async def _session_completed(self, event_id: str, type_: str, obj: Mapping[str, Any]) -> Outcome:
        metadata = obj.get("metadata") or {}
        sub_id = obj.get("client_reference_id") or metadata.get(METADATA_KEY)
        if sub_id is None and obj.get("id"):
            found = await find_subscription(self._db, session_id=str(obj["id"]))
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

        released: list[str] = []

        def release(connection: Connection, sub: Subscription) -> None:
            released.clear()  # a retried attempt starts over
            if sub.shipping:
                released.extend(self._release_waiting(connection, sub))

        done = await self.change(sub_id, completed, (event_id, type_), then=release)
        for order_id in released:
            self._ledger.notify_paid(order_id)
        return done

    def _release_waiting(self, connection: Connection, sub: Subscription) -> list[str]:
        """The subscription's paid orders that waited for its shipping address (an invoice paid before the
        checkout's completion arrived) get it and go to fulfilment."""
        assert sub.shipping is not None
        waiting = connection.execute(
            select(Order).where(
                col(Order.cart_id) == sub.id, col(Order.hold_reason) == machine.Hold.AWAITING_ADDRESS.value
            )
        )
        released = []
        for row in waiting.all():
            order = order_zones(Order(**row._mapping))
            if self._ledger.release_for_address(connection, order, dict(sub.shipping)):
                released.append(order.id)
        return released

    async def change(
        self,
        sub_id: str | None,
        mutate: Callable[[Subscription], None],
        dedupe: tuple[str, str] | None = None,
        *,
        then: Callable[[Connection, Subscription], None] | None = None,
    ) -> Outcome:
        """Apply `mutate` to the subscription's facts in one write transaction (recording the event in it, so
        a replay does nothing), retrying when another write got there first. `then` runs in the same
        transaction, after the facts are written."""
        if sub_id is None:
            return Outcome("unknown_subscription")
        db = self._db
        for _ in range(20):
            result = await db.write(
                lambda connection: self._write(connection, str(sub_id), mutate, dedupe, then)
            )
            if result is not None:
                return result
        raise RuntimeError(f"subscription {sub_id} kept changing under concurrent updates")

    def _write(
        self,
        connection: Connection,
        sub_id: str,
        mutate: Callable[[Subscription], None],
        dedupe: tuple[str, str] | None,
        then: Callable[[Connection, Subscription], None] | None = None,
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
        if then is not None:
            then(connection, sub)
        connection.commit()
        return Outcome("applied", sub_id, sub.status)

    async def _invoice_paid(
        self,
        event_id: str,
        type_: str,
        obj: Mapping[str, Any],
        provider: str | None,
        shine: str | None,
        paid_at: datetime,
    ) -> Outcome:
        """One write unit: the event recorded, the subscription's facts moved on and the invoice's order
        written already paid (stock taken, outbox row or hold), all committed together, with no reads
        before it: what a renewal needs is in the event. An invoice whose order exists already (a second
        event for it, or an order an earlier version made) goes through the ledger as any payment does."""
        if provider is None and shine is None:
            return Outcome("unknown_subscription")
        invoice_id = str(obj["id"])
        period_end = invoice_period_end(obj)
        db = self._db
        for _ in range(20):
            done = await db.write(
                lambda connection: self._pay_invoice(
                    connection, (event_id, type_), obj, provider, shine, paid_at, period_end
                )
            )
            if done is not None:
                break
        else:
            raise RuntimeError(f"invoice {invoice_id} kept meeting concurrent updates")
        outcome, paid, existing = done
        if paid is not None and existing is None:
            if outcome.order_id is not None:
                self._ledger.notify_paid(outcome.order_id)
            return outcome
        if paid is None or existing is None:
            return outcome
        applied = await self._ledger.apply(
            existing.id, paid, dedupe=("stripe", event_id, type_), known=existing
        )
        state = "duplicate" if applied.duplicate else "applied"
        return Outcome(state, outcome.subscription_id, outcome.status, existing.id)

    def _pay_invoice(
        self,
        connection: Connection,
        event: tuple[str, str],
        obj: Mapping[str, Any],
        provider: str | None,
        shine: str | None,
        paid_at: datetime,
        period_end: datetime | None,
    ) -> tuple[Outcome, machine.Paid | None, Order | None] | None:
        """None: another writer changed the subscription meanwhile (PostgreSQL); try again."""
        found = {
            row.id: row for row in connection.execute(_SUB_OF_INVOICE, {"sub": shine, "provider": provider})
        }
        row = next((r for r in found.values() if provider and r.provider_subscription_id == provider), None)
        row = row or found.get(str(shine))
        if row is None:
            connection.rollback()  # nothing recorded: a redelivery after the subscription exists applies
            return Outcome("unknown_subscription", shine), None, None
        sub = _plain_subscription(row._mapping)
        invoice_id = str(obj["id"])
        order_id = invoice_order_id(invoice_id)
        known = connection.execute(_ORDER_BY_ID, {"order": order_id}).first()
        existing = order_zones(Order(**known._mapping)) if known is not None else None
        if existing is None and not record_event(connection, "stripe", event[0], event[1], order_id=order_id):
            connection.rollback()
            return Outcome("duplicate", sub.id, sub.status, order_id), None, None
        seen, original = sub.lock_version, sub.model_dump()
        sub.provider_subscription_id = sub.provider_subscription_id or provider
        sub.last_paid_at = _later(sub.last_paid_at, paid_at)
        sub.activated_at = _earlier(sub.activated_at, paid_at)
        sub.current_period_end = _later(sub.current_period_end, period_end)
        refresh(sub)
        changes = {k: v for k, v in sub.model_dump().items() if v != original[k]}
        # For a new order the version moves even with nothing new: a checkout completion committing its
        # address meanwhile (PostgreSQL) then makes this attempt start over and see the address.
        if changes or existing is None:
            written = connection.execute(
                update(Subscription)
                .where(col(Subscription.id) == sub.id, col(Subscription.lock_version) == seen)
                .values(lock_version=seen + 1, updated_at=utcnow(), **changes)
            )
            if not written.rowcount:
                connection.rollback()
                return None
        currency = str(obj.get("currency") or sub.currency).upper()
        paid = machine.Paid(
            at=paid_at,
            payment_intent=invoice_payment_intent(obj),
            amount_total=from_stripe_amount(int(obj.get("amount_paid") or 0), currency),
            currency=currency,
            email=sub.email,
            shipping=sub.shipping,
        )
        if existing is not None:
            if changes:
                connection.commit()
            else:
                connection.rollback()  # a replay: nothing new
            return Outcome("applied", sub.id, sub.status, order_id), paid, existing
        order, lines = self._order_for(sub, invoice_id, paid_at)
        if self._needs_address and not sub.shipping:
            order.hold_reason = machine.Hold.AWAITING_ADDRESS.value
            note(order, "paid before the checkout sent the shipping address: sent once the address arrives")
        self._ledger.insert_paid(connection, order, lines, paid)
        connection.commit()
        return Outcome("applied", sub.id, sub.status, order_id), paid, None

    def _order_for(
        self, sub: Subscription, invoice_id: str, paid_at: datetime
    ) -> tuple[Order, list[OrderLine]]:
        """The invoice's order, not yet paid: its lines are the subscription's items at the subscription's
        prices, its total what they come to (a different amount paid holds it for the merchant, as for any
        order)."""
        order_id = invoice_order_id(invoice_id)
        # Read only, so built without validation or change tracking (`model_construct`): a table model's
        # __init__ costs up to half a millisecond, and this runs once per renewal on the one writer thread.
        lines = [
            OrderLine.model_construct(
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
        order = _plain_order(
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
        return order, lines
