"""Guest ids merged into an account at sign-in, so erasing the account erases under them too.

Revision ID: 0950_person_aliases
Revises: 0800_auth
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0950_person_aliases"
down_revision = "0800_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person_aliases",
        sa.Column("alias_id", sa.String(length=64), primary_key=True),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_person_aliases_person_id", "person_aliases", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_person_aliases_person_id", table_name="person_aliases")
    op.drop_table("person_aliases")
