"""Refill subscriptions: the `subscriptions` table and the simulated gateway's `simulated_subscriptions`.

Revision ID: 0990_subscriptions
Revises: 0970_product_variants
Create Date: 2026-12-06

One row per "subscribe and save" subscription: its items (product, variant, quantity, discounted unit
price), interval in weeks, the provider's ids, and the facts its status is derived from.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0990_subscriptions"
down_revision = "0970_product_variants"
branch_labels = None
depends_on = None


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("gateway", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("interval_weeks", sa.Integer(), nullable=False),
        sa.Column("discount_percent", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("shipping", sa.JSON(), nullable=True),
        sa.Column("checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_url", sa.String(length=2000), nullable=True),
        sa.Column("provider_subscription_id", sa.String(length=255), nullable=True),
        sa.Column("provider_customer_id", sa.String(length=255), nullable=True),
        _when("snapshot_at"),
        sa.Column("snapshot_status", sa.String(length=30), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        _when("skip_until"),
        _when("current_period_end"),
        _when("next_delivery"),
        _when("activated_at"),
        _when("last_paid_at"),
        _when("last_failed_at"),
        _when("ended_at"),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider_subscription_id", name="uq_subscriptions_provider_subscription_id"),
        sa.UniqueConstraint("checkout_session_id", name="uq_subscriptions_checkout_session_id"),
    )
    op.create_index("ix_subscriptions_user_id_created_at", "subscriptions", ["user_id", "created_at"])
    op.create_index("ix_subscriptions_status", "subscriptions", ["status"])
    # The simulated gateway's own subscriptions (Stripe's side of them, when there is no Stripe).
    op.create_table(
        "simulated_subscriptions",
        sa.Column("id", sa.String(length=255), primary_key=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("simulated_subscriptions")
    op.drop_index("ix_subscriptions_status", table_name="subscriptions")
    op.drop_index("ix_subscriptions_user_id_created_at", table_name="subscriptions")
    op.drop_table("subscriptions")
