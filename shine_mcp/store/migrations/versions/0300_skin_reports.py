"""Skin reports: one row per analysis (metrics JSON, model hashes, optional kept photo's path).

Revision ID: 0300_skin_reports
Revises: 0001_products
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0300_skin_reports"
down_revision = "0001_products"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "skin_reports",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("analysis", sa.JSON(), nullable=False),
        sa.Column("model_hashes", sa.JSON(), nullable=False),
        sa.Column("photo_path", sa.String(length=300), nullable=True),
    )
    op.create_index("ix_skin_reports_user_id_created_at", "skin_reports", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_skin_reports_user_id_created_at", table_name="skin_reports")
    op.drop_table("skin_reports")
