"""Product variants: `product_variants`, a price range on `products`, `variant_id` on cart items and order lines.

Revision ID: 0970_product_variants
Revises: 0960_order_holds
Create Date: 2026-12-06

Every existing product gets exactly one variant carrying its price, stock, size and currency; its id is
"var_" and the product id's 12 hex (`tables.default_variant_id`), so cart items and order lines can point
at it in plain SQL on both dialects. A cart holds one line per variant: its key becomes (cart_id,
variant_id). Order lines keep `variant_id` nullable: a line whose product is gone has none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0970_product_variants"
# The orders branch: it holds products (0001), cart items and order lines (0600). Independent of the catalog
# change-tracking branch (0110), whose triggers see these writes whichever runs first.
down_revision = "0960_order_holds"
branch_labels = None
depends_on = None

DEFAULT_VARIANT = "'var_' || substr({column}, 5)"  # SQLite and PostgreSQL alike: 'prd_ab…' -> 'var_ab…'


def _rebuild_cart_items(key: list[str], *, with_variant: bool) -> None:
    """SQLite cannot change a primary key in place: copy the items into a table with the new key."""
    columns: list[sa.Column[object]] = [
        sa.Column("cart_id", sa.String(length=40), primary_key=True),
        sa.Column("product_id", sa.String(length=40), primary_key="product_id" in key, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    ]
    if with_variant:
        columns.insert(1, sa.Column("variant_id", sa.String(length=40), primary_key=True))
    foreign_key = sa.ForeignKeyConstraint(["cart_id"], ["carts.id"], name="fk_cart_items_cart_id")
    op.create_table("cart_items_new", *columns, foreign_key)
    names = ", ".join(c.name for c in columns)
    op.execute(f"INSERT INTO cart_items_new ({names}) SELECT {names} FROM cart_items")
    op.drop_table("cart_items")
    op.rename_table("cart_items_new", "cart_items")


def upgrade() -> None:
    op.create_table(
        "product_variants",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=True),
        sa.Column("barcode", sa.String(length=60), nullable=True),
        sa.Column("price_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("size", sa.String(length=60), nullable=True),
        sa.Column("image_url", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name="fk_product_variants_product_id", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_product_variants_product_id_position", "product_variants", ["product_id", "position"])
    op.execute(
        "INSERT INTO product_variants "
        "(id, product_id, position, title, options, sku, barcode, price_minor, currency, stock, size, image_url) "
        f"SELECT {DEFAULT_VARIANT.format(column='id')}, id, 0, '', '{{}}', NULL, NULL, price_minor, currency, "
        "stock, size, NULL FROM products"
    )
    # A nullable column without a default: a plain ALTER TABLE on both dialects (no table copy, so the
    # full-text and change-tracking triggers on `products` stay as they are).
    op.add_column("products", sa.Column("price_max_minor", sa.Integer(), nullable=True))
    op.execute("UPDATE products SET price_max_minor = price_minor")

    op.add_column("order_lines", sa.Column("variant_id", sa.String(length=40), nullable=True))
    op.execute(
        f"UPDATE order_lines SET variant_id = {DEFAULT_VARIANT.format(column='product_id')} "
        "WHERE product_id IN (SELECT id FROM products)"
    )

    # Cart items: one line per variant. Every item gets its product's default variant (a gone product's
    # item keeps the id its variant would have had; the cart shows it as no longer sold).
    op.add_column("cart_items", sa.Column("variant_id", sa.String(length=40), nullable=True))
    op.execute(f"UPDATE cart_items SET variant_id = {DEFAULT_VARIANT.format(column='product_id')}")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_cart_items(["cart_id", "variant_id"], with_variant=True)
    else:
        op.alter_column("cart_items", "variant_id", existing_type=sa.String(length=40), nullable=False)
        op.drop_constraint("cart_items_pkey", "cart_items", type_="primary")
        op.create_primary_key("cart_items_pkey", "cart_items", ["cart_id", "variant_id"])


def downgrade() -> None:
    # Back to one line per product: keep the first variant's line of each product.
    op.execute(
        "DELETE FROM cart_items WHERE EXISTS (SELECT 1 FROM cart_items other "
        "WHERE other.cart_id = cart_items.cart_id AND other.product_id = cart_items.product_id "
        "AND other.variant_id < cart_items.variant_id)"
    )
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_cart_items(["cart_id", "product_id"], with_variant=False)
        with op.batch_alter_table("order_lines") as batch:
            batch.drop_column("variant_id")
    else:
        op.drop_constraint("cart_items_pkey", "cart_items", type_="primary")
        op.create_primary_key("cart_items_pkey", "cart_items", ["cart_id", "product_id"])
        op.drop_column("cart_items", "variant_id")
        op.drop_column("order_lines", "variant_id")
    # products keeps its triggers only if it is not copied: drop the column in place (SQLite 3.35+).
    op.execute("ALTER TABLE products DROP COLUMN price_max_minor")
    op.drop_index("ix_product_variants_product_id_position", table_name="product_variants")
    op.drop_table("product_variants")
