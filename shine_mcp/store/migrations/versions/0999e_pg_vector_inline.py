"""Keep the search vector in the products' rows on PostgreSQL, so ranking a match does not read TOAST.

Revision ID: 0999e_pg_vector_inline
Revises: 0999c_pg_search
Create Date: 2026-12-06

With 0999c's two extra vectors a product row is ~2.1 kB, over PostgreSQL's 2 kB TOAST threshold, and
the toaster moved the largest value out of the row: `search_vector` (~0.7 kB), the one `ts_rank_cd` reads
for every product it ranks (three buffer reads each through the TOAST index). Storage MAIN makes the
toaster move the other long values (ingredients, description, the two smaller vectors) out first.
At 50 000 products, ranking the 1 964 products naming a brand fell from ~10 ms to ~5 ms (EXPLAIN
ANALYZE, a copy of the table loaded with this setting). It applies to rows written from now on: an import
that changes a product rewrites its vectors; rows never written again keep theirs where they are.
PostgreSQL only: SQLite searches through its in-memory index.
"""

from __future__ import annotations

from alembic import op

revision = "0999e_pg_vector_inline"
down_revision = "0999c_pg_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE products ALTER COLUMN search_vector SET STORAGE MAIN")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE products ALTER COLUMN search_vector SET STORAGE EXTENDED")
