"""`Ledger.apply`: the one place an order changes. Every webhook, page, tool and worker goes through it.

One short write transaction per event: remember the event id (a replay stops there), write the order's new
facts only if nobody changed it since it was read (`lock_version`, an optimistic lock: otherwise read and
try again), and do what a new status requires in the same commit: when an order becomes paid, take the
stock, empty the cart and write the fulfilment outbox row (or, when another payment took the last units
first, hold the order for the merchant: `hold_reason`); when it ends unpaid, free the cart for a new
checkout. On SQLite the order is read before the transaction, so concurrent webhooks only queue for the
writes on the database's one writer thread (the whole transaction is one hop there); on PostgreSQL it is
read and locked inside it, one connection and one transaction per event, the stock rows every payment for
a product locks written by the statement right before COMMIT (`take_stock`). A payment event on PostgreSQL
goes first without a transaction: the order read with its lines, then every write in one statement that
commits on its own and writes only if the order is as read, the event new and the stock there
(`paid_at_once`); otherwise the transaction sorts it out. The caller answers the webhook after this
returns, so a 2xx always means "committed".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Update, bindparam, delete, update
from sqlalchemy.engine import Connection
from sqlmodel import col, select

from shine_mcp.clock import utcnow
from shine_mcp.orders import machine
from shine_mcp.orders.machine import Event, Facts, Hold, Status
from shine_mcp.orders.paid_at_once import Driver, payment_sql, stock_parameters, stock_sql
from shine_mcp.orders.privacy import IN_FLIGHT_NOTE, erased
from shine_mcp.store.carts import bump_if_version
from shine_mcp.store.catalog import refresh_products
from shine_mcp.store.db import Database
from shine_mcp.store.orders import (
    FulfilmentJob,
    Order,
    OrderFinder,
    OrderLine,
    Refund,
    new_id,
    record_event,
    table_of,
)
from shine_mcp.store.tables import ProductVariant, default_variant_id

log = logging.getLogger("shine.orders")


ATTENTION_LIMIT = 500
# Constant statements with bound parameters: compiled once, executed from the cache on every payment.
# Taking stock only where enough is left makes "was there enough?" the row count of the update itself:
# the row lock (PostgreSQL) or the one writer (SQLite) means two payments can never both take the last unit.
# Stock is the variant's; the product's sum and price range follow in the same transaction
# (`refresh_products`).
_TAKE_STOCK = (
    update(ProductVariant)
    .where(col(ProductVariant.id) == bindparam("variant"), col(ProductVariant.stock) >= bindparam("quantity"))
    .values(stock=col(ProductVariant.stock) - bindparam("quantity"))
)
# An oversold line takes whatever was left: those units are the held order's.
_TAKE_REST = update(ProductVariant).where(col(ProductVariant.id) == bindparam("variant")).values(stock=0)
# An oversold payment's outbox row, written before the stock was found short (`Ledger._on_payment`).
_DROP_JOB = delete(table_of(FulfilmentJob)).where(table_of(FulfilmentJob).c.id == bindparam("job"))
# A refunded order that never left the shop puts its units back.
_RESTOCK = (
    update(ProductVariant)
    .where(col(ProductVariant.id) == bindparam("variant"))
    .values(stock=col(ProductVariant.stock) + bindparam("quantity"))
)
_HOLD = (
    update(Order)
    .where(col(Order.id) == bindparam("order"))
    .values(hold_reason=bindparam("reason"), attention=bindparam("note"))
)
_LINES = (
    select(OrderLine).where(col(OrderLine.order_id) == bindparam("order")).order_by(col(OrderLine.position))
)
# The optimistic write of an order's changed columns, one statement per set of columns (an event type changes
# the same few every time): built once, then only its parameters change. Building it per event (the where
# clause, coercing each value, the cache key over it all) cost more CPU than SQLite took to run it, on the
# one writer thread that every webhook queues for.
_ORDER_WRITES: dict[tuple[str, ...], Update] = {}


def _order_write(columns: tuple[str, ...]) -> Update:
    """`UPDATE orders SET lock_version = :next_lock, <column> = :o_<column>... WHERE id = :order AND
    lock_version = :seen`."""
    statement = _ORDER_WRITES.get(columns)
    if statement is None:
        statement = _ORDER_WRITES[columns] = (
            update(Order)
            .where(col(Order.id) == bindparam("order"), col(Order.lock_version) == bindparam("seen"))
            .values(lock_version=bindparam("next_lock"), **{name: bindparam(f"o_{name}") for name in columns})
        )
    return statement


def take_stock(connection: Connection, lines: list[OrderLine]) -> tuple[list[OrderLine], bool]:
    """Inside a payment's transaction, as its last writes: take each line's units from its variant where
    enough are left. Returns the lines that found too few (someone else paid for the last units first)
    and whether the products' stock and price range were brought in line already (PostgreSQL, one
    statement for all: see `paid_at_once.stock_sql`); otherwise the caller refreshes them."""
    variants = [variant_of(line) for line in lines]
    if connection.dialect.name != "postgresql" or len(set(variants)) != len(variants) or not lines:
        # SQLite: the writer thread runs the unit without trips through the event loop; a line per update.
        short = [
            line
            for line, variant in zip(lines, variants, strict=True)
            if not connection.execute(_TAKE_STOCK, {"variant": variant, "quantity": line.quantity}).rowcount
        ]
        return short, False
    parameters = stock_parameters(_wanted(lines))
    taken = set(connection.execute(stock_sql(len(lines)), parameters).scalars())
    return [line for line, variant in zip(lines, variants, strict=True) if variant not in taken], True


def _wanted(lines: list[OrderLine]) -> list[tuple[str, int, str]]:
    return [(variant_of(line), line.quantity, line.product_id) for line in lines]


def variant_of(line: OrderLine) -> str:
    """The variant a line sold: lines written before variants existed sold the product's default one."""
    return line.variant_id or default_variant_id(line.product_id)


def _lines(connection: Connection, order_id: str) -> list[OrderLine]:
    # Rows of the table's own columns: constructed without validating them again.
    return [
        OrderLine.model_construct(**row._mapping) for row in connection.execute(_LINES, {"order": order_id})
    ]


def _restocks(before: Facts, after: Facts, order: Order) -> bool:
    """Refunded in full before anything left the shop (not shipped, not with a fulfilment partner), and not
    an oversold order (whose units were never all taken): the units go back on the shelf."""
    return (
        machine.status_of(after) is Status.REFUNDED
        and machine.status_of(before) is not Status.REFUNDED
        and before.paid
        and order.shipped_at is None
        and order.fulfilling_at is None
        and order.hold_reason != Hold.OVERSOLD.value
    )


@dataclass(frozen=True)
class Applied:
    order: Order | None  # None: no such order
    duplicate: bool = False  # the event was applied before: nothing was done
    became_paid: bool = False
    status_before: Status | None = None

    @property
    def status(self) -> Status | None:
        return Status(self.order.status) if self.order else None


def note(order: Order, text: str) -> None:
    if order.attention and text in order.attention:
        return
    joined = f"{order.attention}; {text}" if order.attention else text
    order.attention = joined[:ATTENTION_LIMIT]


def _record_details(order: Order, event: Event) -> None:
    """What an event tells beyond the facts: payment ids, the buyer's email and address, tracking."""
    match event:
        case machine.Paid() | machine.PaymentProcessing():
            order.payment_intent_id = order.payment_intent_id or event.payment_intent
            order.checkout_session_id = order.checkout_session_id or event.session_id
            if not erased(order.user_id):
                order.email = order.email or event.email
            order.shipping = order.shipping or event.shipping
        case machine.Shipped():
            order.tracking_number = event.tracking_number or order.tracking_number
            order.carrier = event.carrier or order.carrier
            if erased(order.user_id):
                # The address was kept only to deliver this order (see shine_mcp.orders.privacy).
                order.shipping = None
                order.attention = (order.attention or "").replace(IN_FLIGHT_NOTE, "").strip("; ") or None
        case machine.RefundRequested() if order.refund_reason is None:
            order.refund_reason = event.reason[:500]
            note(order, "the buyer asked for a refund")
        case machine.Disputed():
            note(order, f"dispute opened ({event.reason or 'no reason given'}): answer it in Stripe")


def _paid_amount_problem(order: Order, event: Event) -> str | None:
    if not isinstance(event, machine.Paid) or event.amount_total is None:
        return None
    if event.amount_total != order.total_minor or (event.currency or order.currency) != order.currency:
        return (
            f"the provider reports {event.amount_total} {event.currency} paid for a total of "
            f"{order.total_minor} {order.currency}: not sent to fulfilment, check it"
        )
    return None


class Ledger:
    def __init__(
        self,
        db: Database,
        *,
        callback_url: str,
        on_paid: Callable[[str], None] | None = None,
        clock: Callable[[], Any] = utcnow,
    ) -> None:
        self._db, self._callback_url, self._on_paid, self._clock = db, callback_url, on_paid, clock

    async def apply(
        self,
        order_id: str,
        event: Event,
        *,
        dedupe: tuple[str, str, str] | None = None,
        known: Order | None = None,
    ) -> Applied:
        """Apply `event` to the order. `dedupe` = (source, event id, type): the event is recorded in the same
        transaction, and a second delivery of it does nothing (`Applied.duplicate`). `known` is the order
        as the caller just read it (saves a read; a stale copy is detected and re-read)."""
        return await self.apply_found(OrderFinder((("id", order_id),)), event, dedupe=dedupe, known=known)

    async def apply_found(
        self,
        find: OrderFinder,
        event: Event,
        *,
        dedupe: tuple[str, str, str] | None = None,
        known: Order | None = None,
    ) -> Applied:
        """Apply `event` to the order `find` reads (None: no such order, nothing recorded), in one write
        transaction that records the event and writes the change.

        PostgreSQL: one unit on one pooled connection, `find` included, locking the order: each statement
        is a trip through the event loop, and a read of its own would cost a checkout, a transaction and
        an optimistic retry. SQLite: `find` runs first on a reader thread, beside the one writer thread,
        which then only writes (its units run one after another: measured, reading and computing there
        too cut webhooks/s by a quarter or more); a change made meanwhile is seen by `lock_version` and
        the order read again. `known`: the order as the caller just read it, for the first attempt.

        A payment with an event id on PostgreSQL is tried first without a transaction (`_pay_at_once`);
        when that writes nothing, it is applied here as any event."""
        db = self._db
        if known is None and db.threads is None and dedupe is not None and isinstance(event, machine.Paid):
            async with db.engine.connect() as connection:
                at_once = await self._pay_at_once(await Driver.of(connection), find, event, dedupe)
            if at_once is not None:
                if at_once.became_paid and self._on_paid is not None and at_once.order is not None:
                    self._on_paid(at_once.order.id)
                return at_once
        for _ in range(20):
            if known is not None or db.threads is not None:
                order = known if known is not None else await db.read(find)
                known = None
                if order is None:
                    return Applied(order=None)
                outcome = await db.write(partial(self._write, order=order, event=event, dedupe=dedupe))
            else:
                outcome = await db.write(partial(self._find_and_write, find, event=event, dedupe=dedupe))
            if outcome is not None:
                if outcome.became_paid and self._on_paid is not None and outcome.order is not None:
                    self._on_paid(outcome.order.id)
                return outcome
        raise RuntimeError("an order kept changing under concurrent updates")

    def _find_and_write(
        self, find: OrderFinder, connection: Connection, *, event: Event, dedupe: tuple[str, str, str] | None
    ) -> Applied | None:
        order = find(connection)
        if order is None:
            connection.rollback()
            return Applied(order=None)
        return self._write(connection, order=order, event=event, dedupe=dedupe)

    async def _pay_at_once(
        self, driver: Driver, find: OrderFinder, event: Event, dedupe: tuple[str, str, str]
    ) -> Applied | None:
        """PostgreSQL, without a transaction: a payment read (the order with its lines) and written by one
        statement (`paid_at_once.payment_sql`), two round trips where the transaction takes ten. None: the
        statement found the order changed, the event a replay or a line short of stock (or the event is not
        a plain payment), and wrote nothing: the caller applies it in a transaction, which sorts each case
        out."""
        found = await find.with_lines(driver.fetch)
        if found is None:
            return Applied(order=None)
        order, lines = found
        seen = order.lock_version
        before, after, became_paid, changes = self._advance(order, event)
        status = machine.status_of(after)
        if not became_paid or not changes:
            return None
        wanted = _wanted(lines)
        if not lines or len({variant for variant, _, _ in wanted}) != len(wanted):
            return None
        now = self._clock()
        order.updated_at = changes["updated_at"] = now
        job = self._job(order, lines, status)
        job_row = job.model_dump() if job is not None else {}
        statement = payment_sql(tuple(changes), tuple(job_row) if job is not None else None, len(lines))
        source, event_id, type_ = dedupe
        parameters = {
            "order": order.id,
            "seen": seen,
            "next_lock": seen + 1,
            "source": source,
            "event_id": event_id,
            "type": type_,
            "received_at": utcnow(),
            "cart": order.cart_id,
            "cart_seen": order.cart_version,
            "cart_next": order.cart_version + 1,
            "now": utcnow(),
            **{f"o_{name}": value for name, value in changes.items()},
            **{f"j_{name}": value for name, value in job_row.items()},
            **stock_parameters(wanted),
        }
        if not await driver.value(statement, parameters):
            return None
        order.lock_version = seen + 1
        return Applied(order=order, became_paid=True, status_before=machine.status_of(before))

    def _advance(self, order: Order, event: Event) -> tuple[Facts, Facts, bool, dict[str, Any]]:
        """The order as `event` leaves it (changed in place): its facts before and after, whether it became
        paid and the columns that changed with their new values."""
        original = order.model_dump()
        before = Facts.of(order)
        after = machine.advance(before, event)
        _record_details(order, event)
        for name in Facts.__dataclass_fields__:
            setattr(order, name, getattr(after, name))
        status = machine.status_of(after)
        order.status = status.value
        became_paid = not before.paid and after.paid
        if became_paid:
            self._check_payment(order, before, event)
        changes = {k: v for k, v in order.model_dump().items() if v != original[k]}
        return before, after, became_paid, changes

    def _write(
        self, connection: Connection, *, order: Order, event: Event, dedupe: tuple[str, str, str] | None
    ) -> Applied | None:
        """Inside the unit: record the event (a replay stops there), compute the change from the order as
        read, and write it only if nobody changed the order since it was read (`lock_version`: a `known`
        copy may be stale); None asks for another attempt."""
        # Core statements, not the ORM session: a tenth of the cost per statement on this hot path.
        if dedupe is not None and not record_event(connection, *dedupe, order_id=order.id):
            connection.rollback()
            return Applied(order=order, duplicate=True)
        seen = order.lock_version
        before, after, became_paid, changes = self._advance(order, event)
        status = machine.status_of(after)
        applied = Applied(order=order, became_paid=became_paid, status_before=machine.status_of(before))
        if not changes and dedupe is None:
            connection.rollback()
            return applied  # nothing new (a replay without an id, e.g. the success page after the webhook)
        if changes:
            order.updated_at = changes["updated_at"] = self._clock()
            written = connection.execute(
                _order_write(tuple(changes)),
                {
                    "order": order.id,
                    "seen": seen,
                    "next_lock": seen + 1,
                    **{f"o_{name}": value for name, value in changes.items()},
                },
            )
            if not written.rowcount:
                connection.rollback()
                return None  # changed meanwhile: read it again
            order.lock_version = seen + 1
        if became_paid:
            self._on_payment(connection, order, _lines(connection, order.id), status)
        elif _restocks(before, after, order):
            lines = _lines(connection, order.id)
            connection.execute(
                _RESTOCK, [{"variant": variant_of(line), "quantity": line.quantity} for line in lines]
            )
            refresh_products(connection, [line.product_id for line in lines])
        elif status in machine.UNPAID_ENDINGS and machine.status_of(before) is Status.PENDING:
            # A new checkout of the same cart must make a new order.
            bump_if_version(connection, order.cart_id, order.cart_version, clear=False)
        if isinstance(event, machine.Refunded):
            self._learn_refunds(connection, order, event)
        connection.commit()
        return applied

    def _check_payment(self, order: Order, before: Facts, event: Event) -> None:
        late = machine.late_payment_note(before)
        if late:
            note(order, late)
        problem = _paid_amount_problem(order, event)
        if problem:
            note(order, problem)
            order.hold_reason = order.hold_reason or Hold.AMOUNT_MISMATCH.value
            log.warning("order %s: %s", order.id, problem)

    def _on_payment(
        self, connection: Connection, order: Order, lines: list[OrderLine], status: Status
    ) -> None:
        """In the transaction that records the payment: empty the cart, write the outbox, take the stock.
        A line with too little stock left (someone else paid for the last units first) holds the order for
        the merchant instead of sending it to fulfilment.

        The stock goes last. Every payment for a product updates its one variant row (and product row), and
        a row lock lasts until COMMIT, across each statement after it: on PostgreSQL a trip through a busy
        event loop each. Taken first, concurrent payments for one product queued behind four such trips
        (measured: 2 workers handled fewer webhooks a second than 1); taken last, behind two, and on
        PostgreSQL behind one (the COMMIT: variant and product in one statement, `take_stock`). So the
        outbox row is written as if the stock is there, and taken back in the rare case it was not."""
        bump_if_version(connection, order.cart_id, order.cart_version, clear=True)
        job = self._job(order, lines, status)
        if job is not None:
            # A table-level insert with the row as parameters: the compiled statement is reused from the
            # cache (no unit-of-work flush, no cache key built over the values).
            connection.execute(table_of(FulfilmentJob).insert(), job.model_dump())
        short, refreshed = take_stock(connection, lines)
        if short:
            if job is not None:  # a person decides first: restock and ship, or refund
                connection.execute(_DROP_JOB, {"job": job.id})
            self._hold_oversold(connection, order, short)
        if short or not refreshed:
            refresh_products(connection, [line.product_id for line in lines])

    def _job(self, order: Order, lines: list[OrderLine], status: Status) -> FulfilmentJob | None:
        """A paid order's fulfilment outbox row; None when it must not ship: held already (the amount did not
        match: a person decides first), nothing to ship (DO_NOT_SHIP), or already in a partner's hands
        (`fulfilling_at`: its news outran the payment's)."""
        if order.hold_reason is not None or status in machine.DO_NOT_SHIP or order.fulfilling_at is not None:
            return None
        job_id = new_id("ful")
        return FulfilmentJob.model_construct(  # no validation: built here, and a model's __init__ is slow
            id=job_id,
            order_id=order.id,
            user_id=order.user_id,
            status="pending",
            next_attempt_at=self._clock(),
            payload=self._request(job_id, order, lines),
        )

    def _hold_oversold(self, connection: Connection, order: Order, short: list[OrderLine]) -> None:
        connection.execute(_TAKE_REST, [{"variant": variant_of(line)} for line in short])
        items = ", ".join(f"{line.quantity} × {line.brand} {line.name}".replace("  ", " ") for line in short)
        note(
            order,
            f"oversold: too little stock was left for {items} when this was paid: not sent to fulfilment; "
            "restock and ship it, or refund it",
        )
        # A payment that was already held (the amount did not match) keeps its first reason; one waiting only
        # for its address is oversold now, so the address alone must not release it.
        if order.hold_reason in (None, Hold.AWAITING_ADDRESS.value):
            order.hold_reason = Hold.OVERSOLD.value
        connection.execute(_HOLD, {"order": order.id, "reason": order.hold_reason, "note": order.attention})
        log.warning("order %s was paid for stock another order took first: held for the merchant", order.id)

    # --- orders a refill invoice makes, inside the subscription's own write unit ---------------------------
    def insert_paid(
        self, connection: Connection, order: Order, lines: list[OrderLine], event: machine.Paid
    ) -> Applied:
        """Inside the caller's transaction: write a new order already paid by `event`, with its lines, the
        stock taken and its outbox row (or its hold: a `hold_reason` set by the caller, e.g. no address yet).
        The caller commits, then calls `notify_paid`: an invoice is then one write unit, not three."""
        before = Facts.of(order)
        after = machine.advance(before, event)
        _record_details(order, event)
        for name in Facts.__dataclass_fields__:
            setattr(order, name, getattr(after, name))
        status = machine.status_of(after)
        order.status = status.value
        became_paid = not before.paid and after.paid
        if became_paid:
            self._check_payment(order, before, event)
        connection.execute(table_of(Order).insert(), order.model_dump())
        connection.execute(table_of(OrderLine).insert(), [line.model_dump() for line in lines])
        if became_paid:
            self._on_payment(connection, order, lines, status)
        return Applied(order=order, became_paid=became_paid, status_before=machine.status_of(before))

    def release_for_address(self, connection: Connection, order: Order, address: dict[str, Any]) -> bool:
        """Inside the caller's transaction: the address a held order waited for (`Hold.AWAITING_ADDRESS`) has
        come; the order gets it and, still paid and not shipped, goes to fulfilment. False: nothing to do."""
        if order.hold_reason != Hold.AWAITING_ADDRESS.value:
            return False
        order.shipping, order.hold_reason = address, None
        connection.execute(
            update(Order)
            .where(col(Order.id) == order.id, col(Order.hold_reason) == Hold.AWAITING_ADDRESS.value)
            .values(
                shipping=address,
                hold_reason=None,
                lock_version=col(Order.lock_version) + 1,
                updated_at=self._clock(),
            )
        )
        status = Status(order.status)
        if status in machine.DO_NOT_SHIP or order.fulfilling_at is not None or order.shipped_at is not None:
            return False
        job_id = new_id("ful")
        job = FulfilmentJob.model_construct(
            id=job_id,
            order_id=order.id,
            user_id=order.user_id,
            status="pending",
            next_attempt_at=self._clock(),
            payload=self._request(job_id, order, _lines(connection, order.id)),
        )
        connection.execute(table_of(FulfilmentJob).insert(), job.model_dump())
        return True

    def notify_paid(self, order_id: str) -> None:
        """After the commit of `insert_paid` or `release_for_address`: wake the fulfilment worker."""
        if self._on_paid is not None:
            self._on_paid(order_id)

    def _request(self, job_id: str, order: Order, lines: list[OrderLine]) -> dict[str, Any]:
        """What the fulfilment partner (or the merchant, from the local queue) receives."""
        return {
            "idempotency_key": job_id,
            "order_id": order.id,
            "placed_at": order.created_at.isoformat(),
            "paid_at": order.paid_at.isoformat() if order.paid_at else None,
            "currency": order.currency,
            "total_minor": order.total_minor,
            "items": [
                {
                    "product_id": line.product_id,
                    "variant_id": variant_of(line),
                    "brand": line.brand,
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_price_minor": line.unit_price_minor,
                }
                for line in lines
            ],
            "email": order.email,
            "ship_to": order.shipping,
            "callback_url": self._callback_url,
        }

    def _learn_refunds(self, connection: Connection, order: Order, event: machine.Refunded) -> None:
        """Refunds made outside Shine (the Stripe dashboard) become rows too, so reports see them."""
        rows = connection.execute(select(Refund).where(col(Refund.order_id) == order.id))
        known = sum(r.amount_minor for r in rows if r.status != "failed")
        missing = min(event.total_refunded, order.total_minor) - known
        if missing > 0:
            refund = Refund(
                id=new_id("rfd"),
                order_id=order.id,
                user_id=order.user_id,
                amount_minor=missing,
                currency=order.currency,
                status="succeeded",
                source="provider",
                reason="refunded at the payment provider",
                created_at=event.at,
                updated_at=event.at,
            )
            connection.execute(table_of(Refund).insert(), refund.model_dump())
