"""SQLModel tables. Schema changes go through an Alembic migration in `migrations/versions/`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, Column, DateTime, ForeignKeyConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from shine_mcp.clock import aware, utcnow

Row = TypeVar("Row")


def moment_field() -> Any:
    """A nullable timezone-aware moment column (an event-derived fact not known yet)."""
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


def created_field() -> Any:
    """A timezone-aware column stamped with the time the row is made."""
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


def with_utc(row: Row, names: Iterable[str]) -> Row:
    """SQLite returns naive datetimes; every stored one is UTC."""
    for name in names:
        value = getattr(row, name)
        if value is not None:
            setattr(row, name, aware(value))
    return row


def pipe_join(values: Iterable[str]) -> str:
    """Store a small set as `|a|b|` so `LIKE '%|a|%'` filters work the same on SQLite and PostgreSQL."""
    unique = sorted(set(values))
    return "|" + "|".join(unique) + "|" if unique else ""


def pipe_split(value: str) -> list[str]:
    return [v for v in value.split("|") if v]


@dataclass(frozen=True, slots=True)
class ProductRow:
    """A product as plain read-only values, for hot paths that re-read a few dozen products (advice): the
    ORM object costs ~60 µs to build, this ~3 µs. Same field names as `Product`."""

    id: str
    source: str
    handle: str
    brand: str
    name: str
    category: str
    description: str
    price_minor: int
    currency: str
    size: str | None
    url: str | None
    image_url: str | None
    rating: float | None
    review_count: int
    stock: int
    ingredients_text: str
    ingredients: list[str]
    ingredient_keys: str
    skin_types: str
    concerns: str
    tags: str
    created_at: datetime
    updated_at: datetime
    price_max_minor: int | None = None
    buy_url: str | None = None
    image_width: int | None = None
    image_height: int | None = None


class Product(SQLModel, table=True):
    """A catalog product. Holds no personal data, so it carries no user_id."""

    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("handle", name="uq_products_handle"),
        Index("ix_products_category_price", "category", "price_minor"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "prd_" + 12 hex of the handle: stable across imports
    source: str = Field(max_length=200)  # "demo", "import:<file name>", "web:<domain>"
    handle: str = Field(max_length=300)
    brand: str = Field(max_length=200)
    name: str = Field(max_length=300)
    category: str = Field(max_length=40)
    description: str = ""
    # Integer minor units of `currency`: the cheapest in-stock variant's price (the cheapest variant's when
    # none is in stock); `price_max_minor` is the top of that range (equal to it for one price).
    price_minor: int
    currency: str = Field(max_length=3)
    size: str | None = Field(default=None, max_length=60)
    url: str | None = None
    image_url: str | None = None
    rating: float | None = None
    review_count: int = 0
    stock: int = 0  # the sum of the variants' stock, kept in step with them
    ingredients_text: str = ""  # the INCI list as printed on the pack
    ingredients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    ingredient_keys: str = ""  # pipe_join of lower-cased canonical names and "family:<f>" keys
    skin_types: str = ""  # pipe_join
    concerns: str = ""  # pipe_join
    tags: str = ""  # pipe_join
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    price_max_minor: int | None = None
    # The merchant page selling this exact product elsewhere (affiliate mode); its own, or its first
    # variant's. Shown only when its site is in SHINE_AFFILIATE_LINKS (`store/clicks.py`).
    buy_url: str | None = None
    # The picture's size in px, measured at import or given in the file: pages reserve its space.
    image_width: int | None = None
    image_height: int | None = None


def default_variant_id(product_id: str) -> str:
    """The id of a product's only variant when it has no options: "var_" and the product's own 12 hex, so
    the migration that gave every existing product its variant could compute it in SQL."""
    return "var_" + product_id.removeprefix("prd_")


class ProductVariant(SQLModel, table=True):
    """One sellable version of a product (a size, a shade): its own SKU, price and stock. Every product has
    at least one; carts, orders and stock work per variant, `products` keeps the sums for search."""

    __tablename__ = "product_variants"
    __table_args__ = (
        ForeignKeyConstraint(
            ["product_id"], ["products.id"], name="fk_product_variants_product_id", ondelete="CASCADE"
        ),
        Index("ix_product_variants_product_id_position", "product_id", "position"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "var_" + 12 hex: stable across imports
    product_id: str = Field(max_length=40)
    position: int = 0  # the order the shop lists them in
    title: str = Field(default="", max_length=300)  # "Green / S"; empty for a product without options
    options: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    sku: str | None = Field(default=None, max_length=100)
    barcode: str | None = Field(default=None, max_length=60)
    price_minor: int
    currency: str = Field(max_length=3)
    stock: int = 0
    size: str | None = Field(default=None, max_length=60)
    image_url: str | None = None
    buy_url: str | None = None  # this variant's page at the merchant, when it differs from the product's
    # The picture's size in px, measured at import or given in the file: pages reserve its space.
    image_width: int | None = None
    image_height: int | None = None


class Click(SQLModel, table=True):
    """A shopper followed a "Buy at <merchant>" link. No IP address or browser details; a user id only when
    the shopper was signed in (a guest's click is anonymous)."""

    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_created_at", "created_at"),
        Index("ix_clicks_user_id", "user_id"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "clk_" + 20 hex
    product_id: str = Field(max_length=40)
    variant_id: str | None = Field(default=None, max_length=40)
    merchant: str = Field(max_length=253)  # the configured site it went to, e.g. "amazon.com"
    source: str = Field(max_length=10)  # "widget", "mcp", "shop" or "link" (none given)
    conversation_id: str | None = Field(default=None, max_length=64)
    user_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
