"""Carts: one per person, its items, and the two ways to touch them (read a snapshot, change it under a lock).

Prices are not the cart's to decide: an item remembers the catalog price it was added at only so a later
change can be pointed out; checkout always charges the catalog's price. The cart's `version` goes up with
every change, and an order is made for one (cart, version): that is what makes checkout idempotent.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, ForeignKeyConstraint, UniqueConstraint, bindparam, delete, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from shine_mcp.store.db import Database
from shine_mcp.store.tables import utcnow
from shine_mcp.store.users import aware


def new_cart_id() -> str:
    return "crt_" + secrets.token_hex(10)


class Cart(SQLModel, table=True):
    """A person's cart. `currency` is set by the first item; every later item must share it."""

    __tablename__ = "carts"
    __table_args__ = (UniqueConstraint("user_id", name="uq_carts_user_id"),)

    id: str = Field(primary_key=True, max_length=40)  # "crt_…"
    user_id: str = Field(max_length=64)
    version: int = 1
    currency: str | None = Field(default=None, max_length=3)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class CartItem(SQLModel, table=True):
    """One variant of a product in a cart. `unit_price_minor` is the variant's catalog price when it was
    added or last confirmed."""

    __tablename__ = "cart_items"
    __table_args__ = (ForeignKeyConstraint(["cart_id"], ["carts.id"], name="fk_cart_items_cart_id"),)

    cart_id: str = Field(primary_key=True, max_length=40)
    variant_id: str = Field(primary_key=True, max_length=40)
    product_id: str = Field(max_length=40)
    quantity: int
    unit_price_minor: int
    currency: str = Field(max_length=3)
    added_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


@dataclass(frozen=True)
class CartLineRow:
    product_id: str
    variant_id: str
    quantity: int
    unit_price_minor: int
    currency: str
    added_at: datetime


@dataclass(frozen=True)
class CartSnapshot:
    """A cart as one consistent read: its version and the items that belong to that version."""

    id: str
    user_id: str
    version: int
    currency: str | None
    items: tuple[CartLineRow, ...]

    @property
    def empty(self) -> bool:
        return not self.items


def _line(item: CartItem) -> CartLineRow:
    return CartLineRow(
        item.product_id,
        item.variant_id,
        item.quantity,
        item.unit_price_minor,
        item.currency,
        aware(item.added_at),
    )


async def read_cart(db: Database, user_id: str) -> CartSnapshot | None:
    """The person's cart, or None when they never had one. Cart and items come from one statement, so the
    items always belong to the version returned (a concurrent change cannot split them)."""
    query = (
        select(Cart, CartItem)
        .join(CartItem, col(CartItem.cart_id) == col(Cart.id), isouter=True)
        .where(col(Cart.user_id) == user_id)
        .order_by(col(CartItem.added_at), col(CartItem.variant_id))
    )
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    if not rows:
        return None
    cart = rows[0][0]
    items = tuple(_line(item) for _, item in rows if item is not None)
    return CartSnapshot(cart.id, cart.user_id, cart.version, cart.currency, items)


@dataclass
class LockedCart:
    """A cart inside a write transaction: change `items` (variant id → row) and `currency`, then leave."""

    session: AsyncSession
    cart: Cart
    items: dict[str, CartItem]

    def snapshot(self) -> CartSnapshot:
        ordered = sorted(self.items.values(), key=lambda i: (aware(i.added_at), i.variant_id))
        return CartSnapshot(
            self.cart.id,
            self.cart.user_id,
            self.cart.version,
            self.cart.currency,
            tuple(_line(i) for i in ordered),
        )


@asynccontextmanager
async def locked_cart(db: Database, user_id: str) -> AsyncIterator[LockedCart]:
    """Open a transaction that owns the person's cart (created if missing) and bumps its version.

    The version bump is the first statement: on PostgreSQL it locks the row, on SQLite it takes the
    write lock, so two changes to one cart queue up instead of overwriting each other."""
    for attempt in range(3):
        async with db.session() as session:
            now = utcnow()
            bumped = await session.execute(
                update(Cart)
                .where(col(Cart.user_id) == user_id)
                .values(version=col(Cart.version) + 1, updated_at=now)
            )
            if not getattr(bumped, "rowcount", 0):
                session.add(
                    Cart(id=new_cart_id(), user_id=user_id, version=1, created_at=now, updated_at=now)
                )
                try:
                    await session.flush()
                except IntegrityError:  # a concurrent first change created it: start over and bump that one
                    await session.rollback()
                    if attempt == 2:
                        raise
                    continue
            cart = (await session.execute(select(Cart).where(col(Cart.user_id) == user_id))).scalar_one()
            items = (
                await session.execute(select(CartItem).where(col(CartItem.cart_id) == cart.id))
            ).scalars()
            locked = LockedCart(session, cart, {i.variant_id: i for i in items})
            yield locked
            await session.commit()
            return
    raise AssertionError("unreachable")


_BUMP_CART = (
    update(Cart)
    .where(col(Cart.id) == bindparam("cart"), col(Cart.version) == bindparam("seen"))
    .values(version=bindparam("next_version"), updated_at=bindparam("now"))
)
_EMPTY_CART = _BUMP_CART.values(currency=None)
_CLEAR_ITEMS = delete(CartItem).where(col(CartItem.cart_id) == bindparam("cart"))


def bump_if_version(connection: Connection, cart_id: str, version: int, *, clear: bool) -> bool:
    """Inside a caller's transaction: move the cart past `version` (so checking out again makes a new
    order), emptying it when `clear`. Nothing happens when the cart has changed since that version."""
    values = {"next_version": version + 1, "now": utcnow(), "cart": cart_id, "seen": version}
    moved = connection.execute(_EMPTY_CART if clear else _BUMP_CART, values)
    if not moved.rowcount:
        return False
    if clear:
        connection.execute(_CLEAR_ITEMS, {"cart": cart_id})
    return True
