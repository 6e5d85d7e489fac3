"""Carts: one per person, its items, and the two ways to touch them (read a snapshot, change it under a lock).

Prices are not the cart's to decide: an item remembers the catalog price it was added at only so a later
change can be pointed out; checkout always charges the catalog's price. The cart's `version` goes up with
every change, and an order is made for one (cart, version): that is what makes checkout idempotent.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    Table,
    UniqueConstraint,
    bindparam,
    delete,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel, col, select

from shine_mcp.clock import aware, utcnow
from shine_mcp.store.db import Database
from shine_mcp.store.tables import ProductVariant

T = TypeVar("T")


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
    async with db.reading() as session:
        rows = (await session.execute(query)).all()
    if not rows:
        return None
    cart = rows[0][0]
    items = tuple(_line(item) for _, item in rows if item is not None)
    return CartSnapshot(cart.id, cart.user_id, cart.version, cart.currency, items)


@dataclass
class LockedCart:
    """A cart inside its write unit: change `items` (variant id → row: add, edit or delete entries) and
    `cart.currency`; what changed is written when the change returns. `connection` reads more in the
    same transaction (the variants' current prices and stock)."""

    connection: Connection
    cart: Cart
    items: dict[str, CartItem]

    def variants(self, variant_ids: list[str]) -> dict[str, ProductVariant]:
        """The variants' rows as they are now (price, stock), read inside the cart's transaction."""
        table: Table = ProductVariant.__table__  # type: ignore[attr-defined]
        rows = self.connection.execute(sa_select(table).where(table.c.id.in_(variant_ids)))
        return {row.id: ProductVariant(**row._mapping) for row in rows}

    def snapshot(self) -> CartSnapshot:
        ordered = sorted(self.items.values(), key=lambda i: (aware(i.added_at), i.variant_id))
        return CartSnapshot(
            self.cart.id,
            self.cart.user_id,
            self.cart.version,
            self.cart.currency,
            tuple(_line(i) for i in ordered),
        )


_CARTS: Table = Cart.__table__  # type: ignore[attr-defined]
_ITEMS: Table = CartItem.__table__  # type: ignore[attr-defined]
_BUMP_USERS_CART = (
    update(_CARTS)
    .where(_CARTS.c.user_id == bindparam("user"))
    .values(version=_CARTS.c.version + 1, updated_at=bindparam("now"))
)
_ITEM_KEY = (_ITEMS.c.cart_id == bindparam("cart")) & (_ITEMS.c.variant_id == bindparam("variant"))
_EDITABLE = ("quantity", "unit_price_minor", "currency")


async def change_cart(db: Database, user_id: str, change: Callable[[LockedCart], T]) -> T:
    """Run `change` on the person's cart (created if missing) in one transaction that bumps its version
    first, write what it changed, and return what it returned; an exception from it writes nothing.

    The version bump is the first statement: on PostgreSQL it locks the row, on SQLite the unit holds the
    write lock, so two changes to one cart queue up instead of overwriting each other. It is one unit of
    work (`Database.write`): on SQLite a single hop to the writer thread. As an ORM session it held
    SQLite's write lock across half a dozen trips through the event loop, and under load every other
    request's write (each one's rate-limit count included) waited behind it: add_to_cart took 4 s at
    the median and checkout 9 s in the mixed load benchmark."""

    def work(connection: Connection) -> T:
        now = utcnow()
        if not connection.execute(_BUMP_USERS_CART, {"user": user_id, "now": now}).rowcount:
            dialect_insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
            first = dialect_insert(_CARTS).values(
                id=new_cart_id(), user_id=user_id, version=1, created_at=now, updated_at=now
            )
            if not connection.execute(first.on_conflict_do_nothing(index_elements=["user_id"])).rowcount:
                # A concurrent first change (another worker) created it meanwhile: bump that one.
                connection.execute(_BUMP_USERS_CART, {"user": user_id, "now": now})
        cart = Cart(**connection.execute(sa_select(_CARTS).where(_CARTS.c.user_id == user_id)).one()._mapping)
        rows = connection.execute(sa_select(_ITEMS).where(_ITEMS.c.cart_id == cart.id))
        items = {row.variant_id: CartItem(**row._mapping) for row in rows}
        before = {variant: item.model_dump() for variant, item in items.items()}
        currency = cart.currency
        locked = LockedCart(connection, cart, items)
        result = change(locked)  # raising here leaves the transaction uncommitted: nothing is written
        gone = [variant for variant in before if variant not in locked.items]
        if gone:
            connection.execute(
                delete(_ITEMS).where(_ITEMS.c.cart_id == cart.id, _ITEMS.c.variant_id.in_(gone))
            )
        added = [item.model_dump() for variant, item in locked.items.items() if variant not in before]
        if added:
            connection.execute(_ITEMS.insert(), added)
        for variant, item in locked.items.items():
            values = item.model_dump()
            if variant in before and values != before[variant]:
                connection.execute(
                    update(_ITEMS).where(_ITEM_KEY).values({name: values[name] for name in _EDITABLE}),
                    {"cart": cart.id, "variant": variant},
                )
        if cart.currency != currency:
            connection.execute(update(_CARTS).where(_CARTS.c.id == cart.id).values(currency=cart.currency))
        connection.commit()
        return result

    return await db.write(work)


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
