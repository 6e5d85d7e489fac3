"""MCP stream events: what the server sent on each Streamable HTTP stream, so a dropped stream can resume.

Revision ID: 0996_mcp_events
Revises: 0800_auth
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0996_mcp_events"
down_revision = "0800_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mcp_stream_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("stream_id", sa.String(length=128), nullable=False),
        sa.Column("message", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_mcp_stream_events_stream", "mcp_stream_events", ["scope", "stream_id", "id"])
    op.create_index("ix_mcp_stream_events_created_at", "mcp_stream_events", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_mcp_stream_events_created_at", table_name="mcp_stream_events")
    op.drop_index("ix_mcp_stream_events_stream", table_name="mcp_stream_events")
    op.drop_table("mcp_stream_events")
