"""Picture sizes: `image_width` and `image_height` on products and variants, measured at import or given in
the file, so pages and cards reserve the picture's space before it loads.

Revision ID: 0997_image_sizes
Revises: 0995_clicks
Create Date: 2026-12-06

Nullable columns without a default: a plain ALTER TABLE on both dialects, so the full-text and change-tracking
triggers on `products` stay as they are. Existing rows keep NULL: their sizes are unknown until re-imported.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0997_image_sizes"
down_revision = "0995_clicks"
branch_labels = None
depends_on = None

TABLES = ("products", "product_variants")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("image_width", sa.Integer(), nullable=True))
        op.add_column(table, sa.Column("image_height", sa.Integer(), nullable=True))


def downgrade() -> None:
    # In place (SQLite 3.35+): copying `products` would lose its triggers.
    for table in reversed(TABLES):
        op.execute(f"ALTER TABLE {table} DROP COLUMN image_height")
        op.execute(f"ALTER TABLE {table} DROP COLUMN image_width")
