"""Premium memberships: the `memberships` table.

Revision ID: 0999_premium
Revises: 0990_subscriptions
Create Date: 2026-12-06

One row per premium membership (a monthly or yearly subscription): its plan, a plan booked for the period's
end, the provider's ids and the facts its status (and so the premium role) is derived from.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0999_premium"
down_revision = "0990_subscriptions"
branch_labels = None
depends_on = None


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.create_table(
        "memberships",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("gateway", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("plan", sa.String(length=10), nullable=False),
        sa.Column("pending_plan", sa.String(length=10), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_url", sa.String(length=2000), nullable=True),
        sa.Column("provider_subscription_id", sa.String(length=255), nullable=True),
        sa.Column("provider_customer_id", sa.String(length=255), nullable=True),
        _when("snapshot_at"),
        sa.Column("snapshot_status", sa.String(length=30), nullable=True),
        sa.Column("snapshot_interval", sa.String(length=10), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        _when("current_period_end"),
        _when("activated_at"),
        _when("last_paid_at"),
        _when("last_failed_at"),
        _when("ended_at"),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider_subscription_id", name="uq_memberships_provider_subscription_id"),
        sa.UniqueConstraint("checkout_session_id", name="uq_memberships_checkout_session_id"),
    )
    op.create_index("ix_memberships_user_id_created_at", "memberships", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_memberships_user_id_created_at", table_name="memberships")
    op.drop_table("memberships")
