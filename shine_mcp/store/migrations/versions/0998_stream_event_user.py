"""MCP stream events carry the person they were sent to, so erasing the person erases them too.

Revision ID: 0998_stream_event_user
Revises: 0996_mcp_events
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0998_stream_event_user"
down_revision = "0996_mcp_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows from before this revision name no one; they leave within the hour (STREAM_EVENT_RETENTION).
    with op.batch_alter_table("mcp_stream_events") as batch:
        batch.add_column(sa.Column("user_id", sa.String(length=64), nullable=True))
    op.create_index("ix_mcp_stream_events_user_id", "mcp_stream_events", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_mcp_stream_events_user_id", table_name="mcp_stream_events")
    with op.batch_alter_table("mcp_stream_events") as batch:
        batch.drop_column("user_id")
