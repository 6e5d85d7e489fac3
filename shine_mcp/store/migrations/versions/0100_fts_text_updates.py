"""Re-index a product's full text only when its text changes.

Revision ID: 0100_fts_text_updates
Revises: 0001_products
Create Date: 2026-11-22

The first trigger fired on every UPDATE of `products`, so taking stock on a payment re-tokenised the
product's description and INCI list into FTS5. `AFTER UPDATE OF <text columns>` leaves stock, price and
rating changes alone. PostgreSQL's generated tsvector column needs nothing.
"""

from __future__ import annotations

from alembic import op

revision = "0100_fts_text_updates"
down_revision = "0001_products"
branch_labels = None
depends_on = None

FTS_COLUMNS = "brand, name, description, ingredients_text"


def _update_trigger(columns: str | None) -> str:
    when = f"UPDATE OF {columns}" if columns else "UPDATE"
    return f"""CREATE TRIGGER products_fts_au AFTER {when} ON products BEGIN
        INSERT INTO products_fts(products_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.rowid, old.brand, old.name, old.description, old.ingredients_text);
        INSERT INTO products_fts(rowid, {FTS_COLUMNS})
        VALUES (new.rowid, new.brand, new.name, new.description, new.ingredients_text);
    END"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS products_fts_au")
    op.execute(_update_trigger(FTS_COLUMNS))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS products_fts_au")
    op.execute(_update_trigger(None))
