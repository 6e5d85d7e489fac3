"""Where to buy: `buy_url` on products and variants, and `clicks`, the record of "Buy at <merchant>" links followed.

Revision ID: 0995_clicks
Revises: 0970_product_variants
Create Date: 2026-12-06

The new columns are nullable without a default: a plain ALTER TABLE on both dialects, so the full-text and
change-tracking triggers on `products` stay as they are. Clicks hold no IP address and no browser details.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0995_clicks"
down_revision = "0970_product_variants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("products", sa.Column("buy_url", sa.String(), nullable=True))
    op.add_column("product_variants", sa.Column("buy_url", sa.String(), nullable=True))
    op.create_table(
        "clicks",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("variant_id", sa.String(length=40), nullable=True),
        sa.Column("merchant", sa.String(length=253), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_clicks_created_at", "clicks", ["created_at"])
    op.create_index("ix_clicks_user_id", "clicks", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_clicks_user_id", table_name="clicks")
    op.drop_index("ix_clicks_created_at", table_name="clicks")
    op.drop_table("clicks")
    # In place (SQLite 3.35+): copying `products` would lose its triggers.
    op.execute("ALTER TABLE product_variants DROP COLUMN buy_url")
    op.execute("ALTER TABLE products DROP COLUMN buy_url")
