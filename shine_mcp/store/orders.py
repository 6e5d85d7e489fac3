"""Order tables and their small queries: orders and their lines, refunds, processed webhook events, the
fulfilment outbox, and the sessions of the simulated checkout. The rules that change them live in
`shine_mcp.orders`; this module only reads and writes rows.

An order is a snapshot: product names and prices are copied at checkout, so a later catalog change never
rewrites what someone bought. Every row that says who bought what carries the buyer's `user_id`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Table,
    UniqueConstraint,
    bindparam,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement
from sqlmodel import Field, SQLModel, col, select

from shine_mcp.clock import aware, utcnow
from shine_mcp.store.db import Database


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def _when(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def _now_column() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class Order(SQLModel, table=True):
    """One checkout of one cart version. `status` is derived from the facts (the `*_at` columns and the
    refunded amount) by `shine_mcp.orders.machine`, and stored for filtering."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("cart_id", "cart_version", name="uq_orders_cart_version"),
        UniqueConstraint("checkout_session_id", name="uq_orders_checkout_session_id"),
        Index("ix_orders_user_id_created_at", "user_id", "created_at"),
        Index("ix_orders_payment_intent_id", "payment_intent_id"),
        Index("ix_orders_paid_at", "paid_at"),
        Index("ix_orders_status", "status"),
        Index("ix_orders_hold_reason", "hold_reason"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "ord_…"
    user_id: str = Field(max_length=64)
    cart_id: str = Field(max_length=40)
    cart_version: int
    gateway: str = Field(max_length=20)  # "stripe" | "simulated"
    status: str = Field(max_length=20)
    currency: str = Field(max_length=3)
    total_minor: int
    amount_refunded_minor: int = 0
    email: str | None = Field(default=None, max_length=320)
    success_url: str = Field(max_length=2000)
    cancel_url: str = Field(max_length=2000)
    checkout_session_id: str | None = Field(default=None, max_length=255)
    checkout_url: str | None = Field(default=None, max_length=2000)
    session_expires_at: datetime | None = _when()
    payment_intent_id: str | None = Field(default=None, max_length=255)
    shipping: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    tracking_number: str | None = Field(default=None, max_length=100)
    carrier: str | None = Field(default=None, max_length=100)
    refund_reason: str | None = Field(default=None, max_length=500)
    attention: str | None = Field(default=None, max_length=500)  # what the merchant should look at
    # Why a paid order was kept from fulfilment (`shine_mcp.orders.machine.Hold`): None ships as usual.
    hold_reason: str | None = Field(default=None, max_length=20)
    lock_version: int = 0  # bumped by every change; the bump is also the row lock
    created_at: datetime = _now_column()
    updated_at: datetime = _now_column()
    paid_at: datetime | None = _when()
    payment_failed_at: datetime | None = _when()
    expired_at: datetime | None = _when()
    cancelled_at: datetime | None = _when()
    fulfilling_at: datetime | None = _when()
    shipped_at: datetime | None = _when()
    disputed_at: datetime | None = _when()
    refund_requested_at: datetime | None = _when()


class OrderLine(SQLModel, table=True):
    """A product variant as it was bought: name (with the variant's title) and unit price copied from the
    catalog at checkout. `variant_id` is None only on lines whose product was gone before variants existed."""

    __tablename__ = "order_lines"
    __table_args__ = (ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_lines_order_id"),)

    order_id: str = Field(primary_key=True, max_length=40)
    position: int = Field(primary_key=True)
    product_id: str = Field(max_length=40)
    variant_id: str | None = Field(default=None, max_length=40)
    brand: str = Field(max_length=200)
    name: str = Field(max_length=300)
    unit_price_minor: int
    quantity: int


class Refund(SQLModel, table=True):
    """Money given back on an order: asked for here (its id is the payment provider's idempotency key)
    or learnt from the provider (a refund made in the Stripe dashboard)."""

    __tablename__ = "refunds"
    __table_args__ = (
        ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_refunds_order_id"),
        UniqueConstraint("gateway_refund_id", name="uq_refunds_gateway_refund_id"),
        Index("ix_refunds_order_id", "order_id"),
        Index("ix_refunds_created_at", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "rfd_…"
    order_id: str = Field(max_length=40)
    user_id: str = Field(max_length=64)  # the buyer's
    amount_minor: int
    currency: str = Field(max_length=3)
    status: str = Field(max_length=20)  # creating | pending | succeeded | failed
    source: str = Field(max_length=20)  # "shine" (refund_order) | "provider" (learnt from a webhook)
    reason: str | None = Field(default=None, max_length=500)
    requested_by: str | None = Field(default=None, max_length=64)
    gateway_refund_id: str | None = Field(default=None, max_length=255)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _now_column()
    updated_at: datetime = _now_column()


class ProcessedEvent(SQLModel, table=True):
    """A webhook or partner callback already applied. The primary key makes a replay a no-op."""

    __tablename__ = "processed_events"

    source: str = Field(primary_key=True, max_length=20)  # "stripe" | "fulfilment"
    event_id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    order_id: str | None = Field(default=None, max_length=40)
    received_at: datetime = _now_column()


class FulfilmentJob(SQLModel, table=True):
    """The outbox: written in the transaction that marks an order paid, delivered by the worker.

    status: pending (to deliver) · delivered (a partner accepted it) · local (in the merchant's own queue)
    · failed (every partner rejected it, or retries ran out) · cancelled (refunded or disputed first)."""

    __tablename__ = "fulfilment_jobs"
    __table_args__ = (
        ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_fulfilment_jobs_order_id"),
        UniqueConstraint("order_id", name="uq_fulfilment_jobs_order_id"),
        Index("ix_fulfilment_jobs_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "ful_…", the partners' idempotency key
    order_id: str = Field(max_length=40)
    user_id: str = Field(max_length=64)
    status: str = Field(max_length=20)
    partner_index: int = 0  # 0: SHINE_FULFILMENT_URL, 1: SHINE_FULFILMENT_FALLBACK_URL
    partner: str | None = Field(default=None, max_length=20)  # who has it: primary | fallback | local
    attempts: int = 0  # with the current partner
    next_attempt_at: datetime = _now_column()
    lease_until: datetime | None = _when()
    last_error: str | None = Field(default=None, max_length=500)
    partner_reference: str | None = Field(default=None, max_length=200)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _now_column()
    updated_at: datetime = _now_column()
    delivered_at: datetime | None = _when()


class SimulatedSession(SQLModel, table=True):
    """A Checkout Session of the simulated gateway, as Stripe would hold it (`data` is the session object)."""

    __tablename__ = "simulated_checkout_sessions"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_simulated_checkout_sessions_idempotency_key"),
        Index("ix_simulated_checkout_sessions_payment_intent", "payment_intent"),
        Index("ix_simulated_checkout_sessions_status_expires_at", "status", "expires_at"),
    )

    id: str = Field(primary_key=True, max_length=255)  # "cs_sim_…"
    idempotency_key: str = Field(max_length=255)
    user_id: str = Field(max_length=64)
    status: str = Field(max_length=20)  # open | complete | expired
    payment_intent: str | None = Field(default=None, max_length=255)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _now_column()


ORDER_DATES = (
    "created_at",
    "updated_at",
    "paid_at",
    "payment_failed_at",
    "expired_at",
    "cancelled_at",
    "fulfilling_at",
    "shipped_at",
    "disputed_at",
    "refund_requested_at",
    "session_expires_at",
)


def with_zones(order: Order) -> Order:
    """SQLite returns naive datetimes; every stored one is UTC."""
    for name in ORDER_DATES:
        value = getattr(order, name)
        if value is not None:
            setattr(order, name, aware(value))
    return order


# --- orders --------------------------------------------------------------------------------------------
M = TypeVar("M", bound=SQLModel)


def table_of(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def _rows(
    connection: Connection, query: Any, model: type[M], parameters: dict[str, Any] | None = None
) -> list[M]:
    """Hot-path reads (every webhook reads its order): a Core execute, then plain model objects, skipping
    the ORM session's identity map and loading machinery."""
    return [model(**row._mapping) for row in connection.execute(query, parameters)]


# A new order, or nothing when its id or its cart version already has one (`insert_order`): per dialect.
_NEW_ORDER = {
    "postgresql": postgresql_insert(table_of(Order)).on_conflict_do_nothing(),
    "sqlite": sqlite_insert(table_of(Order)).on_conflict_do_nothing(),
}


async def insert_order(db: Database, order: Order, lines: Sequence[OrderLine]) -> bool:
    """Write a new order with its lines in one transaction; False, and nothing written, when this cart
    version (or this order id) already has one.

    Two checkouts of one cart version race here (a double click, two workers). The loser's insert does
    nothing (`ON CONFLICT DO NOTHING`; on PostgreSQL it first waits for the winner's transaction, whose
    lines are then in): a failed insert cost PostgreSQL a logged ERROR with the whole statement, ~1.5 KB
    for every lost race."""
    orders, order_lines_table = table_of(Order), table_of(OrderLine)
    row = {column.name: getattr(order, column.name) for column in orders.columns}
    line_rows = [
        {column.name: getattr(line, column.name) for column in order_lines_table.columns} for line in lines
    ]

    def work(connection: Connection) -> bool:
        if not connection.execute(_NEW_ORDER[connection.dialect.name], row).rowcount:
            connection.rollback()
            return False
        if line_rows:  # after the order: the lines' foreign key needs it
            connection.execute(order_lines_table.insert(), line_rows)
        connection.commit()
        return True

    return await db.write(work)


async def order_for_cart(db: Database, cart_id: str, version: int) -> Order | None:
    async with db.reading() as session:
        found = await session.execute(
            select(Order).where(col(Order.cart_id) == cart_id, col(Order.cart_version) == version)
        )
        order = found.scalars().first()
    return with_zones(order) if order else None


async def get_order(db: Database, order_id: str, user_id: str | None = None) -> Order | None:
    """One order; with `user_id`, only if it is theirs (another person's order does not exist for them)."""
    query = select(Order).where(col(Order.id) == order_id)
    if user_id is not None:
        query = query.where(col(Order.user_id) == user_id)
    found = await db.read(lambda connection: _rows(connection, query, Order))
    return with_zones(found[0]) if found else None


# Inside a write unit (`Ledger.apply_found`): the order an event is about, read in the transaction that
# changes it and locked until its COMMIT (PostgreSQL; SQLite's writer holds the whole file), so reading it
# costs no connection, transaction or retry of its own. Constant statements: compiled once.
_ORDER_BY = {
    key: select(Order).where(col(getattr(Order, key)) == bindparam("value")).limit(1).with_for_update()
    for key in ("id", "checkout_session_id", "payment_intent_id")
}


def order_row(connection: Connection, *, by: str = "id", value: str) -> Order | None:
    """The order whose `by` column (id, checkout_session_id or payment_intent_id) is `value`, locked for
    the caller's transaction; None when there is none."""
    found = _rows(connection, _ORDER_BY[by], Order, {"value": value})
    return with_zones(found[0]) if found else None


def _with_lines(by: str) -> Any:
    """The order (one at most, as `order_row`) and its lines (`line_…` columns, none for an order without
    lines) in position order: one statement."""
    orders, lines = table_of(Order), table_of(OrderLine)
    found = core_select(orders).where(orders.c[by] == bindparam("value")).limit(1).subquery("found")
    return (
        core_select(found, *(column.label(f"line_{column.name}") for column in lines.c))
        .select_from(found.outerjoin(lines, lines.c.order_id == found.c.id))
        .order_by(lines.c.position)
    )


_WITH_LINES = {key: _with_lines(key) for key in _ORDER_BY}
# Runs a statement with its parameters and returns its rows, each read by column name.
Fetch = Callable[[ClauseElement, dict[str, Any]], Awaitable[Sequence[Mapping[str, Any]]]]
_LINE_COLUMNS = [(f"line_{name}", name) for name in OrderLine.model_fields]


@dataclass(frozen=True)
class OrderFinder:
    """How the order an event is about is found inside its unit: (column, value) pairs tried in turn, the
    column one of id, checkout_session_id and payment_intent_id; the first that names an order wins."""

    tries: tuple[tuple[str, str], ...]

    def __call__(self, connection: Connection) -> Order | None:
        """The order, locked for the caller's transaction (`order_row`)."""
        for by, value in self.tries:
            found = order_row(connection, by=by, value=value)
            if found is not None:
                return found
        return None

    async def with_lines(self, fetch: Fetch) -> tuple[Order, list[OrderLine]] | None:
        """The order, not locked (for a unit without a transaction: `paid_at_once`), and its lines: one
        statement (per try), run by `fetch`."""
        for by, value in self.tries:
            rows = await fetch(_WITH_LINES[by], {"value": value})
            if rows:
                first = rows[0]
                order = with_zones(Order(**{name: first[name] for name in Order.model_fields}))
                lines = [
                    OrderLine(**{name: row[label] for label, name in _LINE_COLUMNS})
                    for row in rows
                    if row["line_position"] is not None
                ]
                return order, lines
        return None


async def find_order(
    db: Database, *, session_id: str | None = None, payment_intent_id: str | None = None
) -> Order | None:
    if session_id is None and payment_intent_id is None:
        return None
    query = select(Order)
    if session_id is not None:
        query = query.where(col(Order.checkout_session_id) == session_id)
    if payment_intent_id is not None:
        query = query.where(col(Order.payment_intent_id) == payment_intent_id)
    found = await db.read(lambda connection: _rows(connection, query.limit(1), Order))
    return with_zones(found[0]) if found else None


async def list_orders(
    db: Database,
    user_id: str | None,
    *,
    statuses: Sequence[str] | None = None,
    limit: int = 20,
    refund_requested: bool = False,
) -> list[Order]:
    """Newest first. `user_id=None` lists everyone's (the merchant's CLI)."""
    query = select(Order)
    if user_id is not None:
        query = query.where(col(Order.user_id) == user_id)
    if statuses:
        query = query.where(col(Order.status).in_(list(statuses)))
    if refund_requested:
        query = query.where(col(Order.refund_requested_at).is_not(None))
    query = query.order_by(col(Order.created_at).desc(), col(Order.id).desc()).limit(limit)
    async with db.reading() as session:
        return [with_zones(o) for o in (await session.execute(query)).scalars()]


async def held_orders(db: Database, limit: int = 1000) -> list[Order]:
    """Paid orders kept from fulfilment for the merchant (`hold_reason`), not shipped, refunded or disputed
    yet: oldest first, the order they were paid in."""
    query = (
        select(Order)
        .where(
            col(Order.hold_reason).is_not(None),
            col(Order.shipped_at).is_(None),
            col(Order.status).not_in(["refunded", "disputed"]),
        )
        .order_by(col(Order.paid_at), col(Order.id))
        .limit(limit)
    )
    async with db.reading() as session:
        return [with_zones(o) for o in (await session.execute(query)).scalars()]


async def order_lines(db: Database, order_ids: Sequence[str]) -> dict[str, list[OrderLine]]:
    if not order_ids:
        return {}
    query = (
        select(OrderLine)
        .where(col(OrderLine.order_id).in_(list(order_ids)))
        .order_by(col(OrderLine.order_id), col(OrderLine.position))
    )
    grouped: dict[str, list[OrderLine]] = {i: [] for i in order_ids}
    for line in await db.read(lambda connection: _rows(connection, query, OrderLine)):
        grouped[line.order_id].append(line)
    return grouped


async def lock_order(session: AsyncSession, order_id: str) -> Order | None:
    """Inside a write transaction: lock one order (the version bump takes the row lock on PostgreSQL and
    the write lock on SQLite) and read it as it is now."""
    bumped = await session.execute(
        update(Order)
        .where(col(Order.id) == order_id)
        .values(lock_version=col(Order.lock_version) + 1)
        .returning(Order)
        .execution_options(populate_existing=True)
    )
    order = bumped.scalars().first()
    return with_zones(order) if order is not None else None


def record_event(
    connection: Connection, source: str, event_id: str, type_: str, order_id: str | None = None
) -> bool:
    """Inside a write transaction, as its first write: remember an event. False when it was seen before
    (the caller then rolls back and does nothing)."""
    # A table-level insert, not the unit of work: this runs on every webhook.
    row = {
        "source": source,
        "event_id": event_id,
        "type": type_,
        "order_id": order_id,
        "received_at": utcnow(),
    }
    try:
        connection.execute(table_of(ProcessedEvent).insert(), row)
    except IntegrityError:
        return False
    return True


# --- refunds -------------------------------------------------------------------------------------------
async def refunds_of(db: Database, order_id: str) -> list[Refund]:
    async with db.reading() as session:
        rows = await session.execute(
            select(Refund).where(col(Refund.order_id) == order_id).order_by(col(Refund.created_at))
        )
        return list(rows.scalars())


async def refunds_between(db: Database, start: datetime, end: datetime) -> list[tuple[Refund, str]]:
    """Refunds not known to have failed, created in [start, end), with their order's gateway."""
    query = (
        select(Refund, Order.gateway)
        .join(Order, col(Order.id) == col(Refund.order_id))
        .where(col(Refund.created_at) >= start, col(Refund.created_at) < end, col(Refund.status) != "failed")
    )
    async with db.reading() as session:
        return [(r, g) for r, g in (await session.execute(query)).all()]


async def paid_between(db: Database, start: datetime, end: datetime) -> list[Order]:
    query = select(Order).where(col(Order.paid_at) >= start, col(Order.paid_at) < end)
    async with db.reading() as session:
        return [with_zones(o) for o in (await session.execute(query)).scalars()]


# --- the fulfilment outbox -----------------------------------------------------------------------------
async def jobs(db: Database, statuses: Sequence[str] | None = None, limit: int = 200) -> list[FulfilmentJob]:
    query = select(FulfilmentJob).order_by(col(FulfilmentJob.created_at)).limit(limit)
    if statuses:
        query = query.where(col(FulfilmentJob.status).in_(list(statuses)))
    async with db.reading() as session:
        return list((await session.execute(query)).scalars())


async def job_for_order(db: Database, order_id: str) -> FulfilmentJob | None:
    async with db.reading() as session:
        found = await session.execute(select(FulfilmentJob).where(col(FulfilmentJob.order_id) == order_id))
        return found.scalars().first()


# --- the simulated gateway's sessions ------------------------------------------------------------------
class SimulatedSessions:
    """Where the simulated gateway keeps its Checkout Sessions (`SessionLedger` in the payments module)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self, data: dict[str, Any], *, idempotency_key: str, user_id: str, expires_at: datetime
    ) -> dict[str, Any]:
        """Store a new session, or return the one already made with this idempotency key."""
        async with self._db.session() as session:
            session.add(
                SimulatedSession(
                    id=data["id"],
                    idempotency_key=idempotency_key,
                    user_id=user_id,
                    status=data["status"],
                    expires_at=expires_at,
                    data=data,
                )
            )
            try:
                await session.commit()
                return data
            except IntegrityError:
                await session.rollback()
        async with self._db.reading() as session:
            found = await session.execute(
                select(SimulatedSession).where(col(SimulatedSession.idempotency_key) == idempotency_key)
            )
            return dict(found.scalar_one().data)

    async def get(self, session_id: str) -> dict[str, Any] | None:
        async with self._db.reading() as session:
            row = await session.get(SimulatedSession, session_id)
            return dict(row.data) if row else None

    async def by_payment_intent(self, payment_intent: str) -> dict[str, Any] | None:
        async with self._db.reading() as session:
            found = await session.execute(
                select(SimulatedSession).where(col(SimulatedSession.payment_intent) == payment_intent)
            )
            row = found.scalars().first()
            return dict(row.data) if row else None

    async def save(self, data: dict[str, Any], *, expected_status: str | None = None) -> bool:
        """Write a changed session; with `expected_status`, only if it still has that status (so Pay and
        expiry racing each other cannot both win)."""
        values: dict[str, Any] = {
            "data": data,
            "status": data["status"],
            "payment_intent": data.get("payment_intent"),
        }
        query = update(SimulatedSession).where(col(SimulatedSession.id) == data["id"])
        if expected_status is not None:
            query = query.where(col(SimulatedSession.status) == expected_status)
        async with self._db.session() as session:
            changed = await session.execute(query.values(**values))
            await session.commit()
        return bool(getattr(changed, "rowcount", 0))

    async def open_past(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        async with self._db.reading() as session:
            found = await session.execute(
                select(SimulatedSession)
                .where(col(SimulatedSession.status) == "open", col(SimulatedSession.expires_at) <= now)
                .limit(limit)
            )
            return [dict(r.data) for r in found.scalars()]
