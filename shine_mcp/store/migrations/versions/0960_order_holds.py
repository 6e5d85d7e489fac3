"""Why a paid order is held back from fulfilment: `orders.hold_reason` (oversold, amount_mismatch).

Revision ID: 0960_order_holds
Revises: 0600_orders
Create Date: 2026-12-06

Until now an order was kept from fulfilment by a sentence in `attention`; orders already flagged that way
(the amount paid did not match the total) get the matching reason, so they stay held.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0960_order_holds"
down_revision = "0600_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: a plain ALTER TABLE on SQLite and PostgreSQL alike.
    op.add_column("orders", sa.Column("hold_reason", sa.String(length=20), nullable=True))
    op.create_index("ix_orders_hold_reason", "orders", ["hold_reason"])
    op.execute(
        "UPDATE orders SET hold_reason = 'amount_mismatch' "
        "WHERE attention LIKE '%not sent to fulfilment%' AND paid_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_orders_hold_reason", table_name="orders")
    with op.batch_alter_table("orders") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("hold_reason")
