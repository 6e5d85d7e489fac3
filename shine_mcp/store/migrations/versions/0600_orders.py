"""Carts, orders, refunds, processed webhook events, the fulfilment outbox and simulated checkout sessions.

Revision ID: 0600_orders
Revises: 0001_products
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0600_orders"
down_revision = "0001_products"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "carts",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        _when("created_at", False),
        _when("updated_at", False),
        sa.UniqueConstraint("user_id", name="uq_carts_user_id"),
    )
    op.create_table(
        "cart_items",
        sa.Column("cart_id", sa.String(length=40), primary_key=True),
        sa.Column("product_id", sa.String(length=40), primary_key=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _when("added_at", False),
        sa.ForeignKeyConstraint(["cart_id"], ["carts.id"], name="fk_cart_items_cart_id"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("cart_id", sa.String(length=40), nullable=False),
        sa.Column("cart_version", sa.Integer(), nullable=False),
        sa.Column("gateway", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_minor", sa.Integer(), nullable=False),
        sa.Column("amount_refunded_minor", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("success_url", sa.String(length=2000), nullable=False),
        sa.Column("cancel_url", sa.String(length=2000), nullable=False),
        sa.Column("checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_url", sa.String(length=2000), nullable=True),
        _when("session_expires_at"),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("shipping", sa.JSON(), nullable=True),
        sa.Column("tracking_number", sa.String(length=100), nullable=True),
        sa.Column("carrier", sa.String(length=100), nullable=True),
        sa.Column("refund_reason", sa.String(length=500), nullable=True),
        sa.Column("attention", sa.String(length=500), nullable=True),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        _when("created_at", False),
        _when("updated_at", False),
        _when("paid_at"),
        _when("payment_failed_at"),
        _when("expired_at"),
        _when("cancelled_at"),
        _when("fulfilling_at"),
        _when("shipped_at"),
        _when("disputed_at"),
        _when("refund_requested_at"),
        sa.UniqueConstraint("cart_id", "cart_version", name="uq_orders_cart_version"),
        sa.UniqueConstraint("checkout_session_id", name="uq_orders_checkout_session_id"),
    )
    op.create_index("ix_orders_user_id_created_at", "orders", ["user_id", "created_at"])
    op.create_index("ix_orders_payment_intent_id", "orders", ["payment_intent_id"])
    op.create_index("ix_orders_paid_at", "orders", ["paid_at"])
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(length=40), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("brand", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("unit_price_minor", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_lines_order_id"),
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=True),
        sa.Column("gateway_refund_id", sa.String(length=255), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        _when("created_at", False),
        _when("updated_at", False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_refunds_order_id"),
        sa.UniqueConstraint("gateway_refund_id", name="uq_refunds_gateway_refund_id"),
    )
    op.create_index("ix_refunds_order_id", "refunds", ["order_id"])
    op.create_index("ix_refunds_created_at", "refunds", ["created_at"])
    op.create_table(
        "processed_events",
        sa.Column("source", sa.String(length=20), primary_key=True),
        sa.Column("event_id", sa.String(length=255), primary_key=True),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        _when("received_at", False),
    )
    op.create_table(
        "fulfilment_jobs",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("partner_index", sa.Integer(), nullable=False),
        sa.Column("partner", sa.String(length=20), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("next_attempt_at", False),
        _when("lease_until"),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("partner_reference", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        _when("created_at", False),
        _when("updated_at", False),
        _when("delivered_at"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_fulfilment_jobs_order_id"),
        sa.UniqueConstraint("order_id", name="uq_fulfilment_jobs_order_id"),
    )
    op.create_index(
        "ix_fulfilment_jobs_status_next_attempt_at", "fulfilment_jobs", ["status", "next_attempt_at"]
    )
    op.create_table(
        "simulated_checkout_sessions",
        sa.Column("id", sa.String(length=255), primary_key=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("payment_intent", sa.String(length=255), nullable=True),
        _when("expires_at", False),
        sa.Column("data", sa.JSON(), nullable=False),
        _when("created_at", False),
        sa.UniqueConstraint("idempotency_key", name="uq_simulated_checkout_sessions_idempotency_key"),
    )
    op.create_index(
        "ix_simulated_checkout_sessions_payment_intent", "simulated_checkout_sessions", ["payment_intent"]
    )
    op.create_index(
        "ix_simulated_checkout_sessions_status_expires_at",
        "simulated_checkout_sessions",
        ["status", "expires_at"],
    )


def downgrade() -> None:
    for table in (
        "simulated_checkout_sessions",
        "fulfilment_jobs",
        "processed_events",
        "refunds",
        "order_lines",
        "orders",
        "cart_items",
        "carts",
    ):
        op.drop_table(table)
