"""Web cache: Firecrawl answers keyed by normalised arguments, with an expiry (no personal data).

Revision ID: 0900_web_cache
Revises: 0001_products
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0900_web_cache"
down_revision = "0001_products"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_cache",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_web_cache_expires_at", "web_cache", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_web_cache_expires_at", table_name="web_cache")
    op.drop_table("web_cache")
