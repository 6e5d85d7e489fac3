"""Widget sign-in on a shop's own site: the popup's single-use codes and the origin-bound widget tokens.

Revision ID: 0980_widget_tokens
Revises: 0800_auth
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0980_widget_tokens"
down_revision = "0800_auth"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "widget_tokens",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        _when("created_at"),
        _when("last_seen_at"),
        _when("expires_at"),
        _when("revoked_at", nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_widget_tokens_token_hash"),
    )
    op.create_index("ix_widget_tokens_user_id", "widget_tokens", ["user_id"])
    op.create_table(
        "widget_codes",
        sa.Column("code_hash", sa.String(length=64), primary_key=True),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("challenge", sa.String(length=64), nullable=False),
        _when("expires_at"),
        _when("used_at", nullable=True),
        sa.Column("token_id", sa.String(length=40), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("widget_codes")
    op.drop_index("ix_widget_tokens_user_id", table_name="widget_tokens")
    op.drop_table("widget_tokens")
