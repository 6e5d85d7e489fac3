"""Compress stored chats with lz4 on PostgreSQL.

Revision ID: 0710_pg_chat_lz4
Revises: 0700_chat
Create Date: 2026-12-07

Every reply rewrites its whole chat (`chat_sessions.conversation`), and a long chat is kept at the
advisor's context budget, ~210 kB of JSON. PostgreSQL's default compression, pglz, spent most of the
UPDATE's time on it: 2.9 ms a save with pglz against 1.0 ms with lz4, and 42.5 kB stored against 10.5 kB
(one such chat, PostgreSQL 15). Values are compressed as they are written, so each chat changes over at
its next reply. Only where the server was built with lz4 (PostgreSQL 14 and later, as Debian's and the
official images are); elsewhere nothing changes. SQLite stores the text as it is.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0710_pg_chat_lz4"
down_revision = "0700_chat"
branch_labels = None
depends_on = None

_HAS_LZ4 = text(
    "SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
    "AND 'lz4' = ANY(enumvals))"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not bind.execute(_HAS_LZ4).scalar():
        return
    op.execute("ALTER TABLE chat_sessions ALTER COLUMN conversation SET COMPRESSION lz4")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not bind.execute(_HAS_LZ4).scalar():
        return
    op.execute("ALTER TABLE chat_sessions ALTER COLUMN conversation SET COMPRESSION pglz")
