"""Catalog change tracking for the in-memory search index (SQLite only).

Revision ID: 0110_catalog_changes
Revises: 0100_fts_text_updates
Create Date: 2026-12-06

`catalog_version.structure` goes up when a product is added or removed or its id or searched text changes:
every bm25 score moves then. `catalog_row_changes` logs the rows whose other columns change (stock
after a payment, a price, a rating), so the index re-reads just those. Triggers keep both, so writes
from any process (a `shine catalog import` next to a running server) are seen. The log keeps its last
4 096 entries; an index further behind rebuilds.
"""

from __future__ import annotations

from alembic import op

revision = "0110_catalog_changes"
down_revision = "0100_fts_text_updates"
branch_labels = None
depends_on = None

STRUCTURE_COLUMNS = "id, brand, name, description, ingredients_text"  # ids order ties; text moves bm25
LOG_LENGTH = 4096
BUMP = "UPDATE catalog_version SET structure = structure + 1 WHERE id = 1;"

UPGRADE = [
    "CREATE TABLE catalog_version (id INTEGER PRIMARY KEY CHECK (id = 1), structure INTEGER NOT NULL)",
    "INSERT INTO catalog_version (id, structure) VALUES (1, 0)",
    "CREATE TABLE catalog_row_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, product_rowid INTEGER NOT NULL)",
    f"CREATE TRIGGER catalog_version_ai AFTER INSERT ON products BEGIN {BUMP} END",
    f"CREATE TRIGGER catalog_version_ad AFTER DELETE ON products BEGIN {BUMP} END",
    f"CREATE TRIGGER catalog_version_au AFTER UPDATE OF {STRUCTURE_COLUMNS} ON products BEGIN {BUMP} END",
    f"""CREATE TRIGGER catalog_row_changes_au AFTER UPDATE ON products BEGIN
        INSERT INTO catalog_row_changes (product_rowid) VALUES (new.rowid);
        DELETE FROM catalog_row_changes
        WHERE seq <= (SELECT max(seq) FROM catalog_row_changes) - {LOG_LENGTH};
    END""",
]

DOWNGRADE = [
    "DROP TRIGGER IF EXISTS catalog_row_changes_au",
    "DROP TRIGGER IF EXISTS catalog_version_au",
    "DROP TRIGGER IF EXISTS catalog_version_ad",
    "DROP TRIGGER IF EXISTS catalog_version_ai",
    "DROP TABLE IF EXISTS catalog_row_changes",
    "DROP TABLE IF EXISTS catalog_version",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL searches with SQL alone
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in DOWNGRADE:
        op.execute(statement)
