"""Shopper profiles and product feedback (ratings, views).

Revision ID: 0400_profiles
Revises: 0001_products
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0400_profiles"
down_revision = "0001_products"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.String(length=64), primary_key=True),
        sa.Column("skin_type", sa.String(length=20), nullable=True),
        sa.Column("concerns", sa.JSON(), nullable=False),
        sa.Column("sensitivities", sa.JSON(), nullable=False),
        sa.Column("avoid_ingredients", sa.JSON(), nullable=False),
        sa.Column("budget_minor", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("pregnant_or_nursing", sa.Boolean(), nullable=False),
        sa.Column("preferences", sa.JSON(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("hemisphere", sa.String(length=5), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_profiles_skin_type", "profiles", ["skin_type"])
    op.create_table(
        "product_feedback",
        sa.Column("user_id", sa.String(length=64), primary_key=True),
        sa.Column("product_id", sa.String(length=40), primary_key=True),
        sa.Column("kind", sa.String(length=10), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("comment", sa.String(length=2000), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_product_feedback_product_id", "product_feedback", ["product_id"])


def downgrade() -> None:
    op.drop_index("ix_product_feedback_product_id", table_name="product_feedback")
    op.drop_table("product_feedback")
    op.drop_index("ix_profiles_skin_type", table_name="profiles")
    op.drop_table("profiles")
