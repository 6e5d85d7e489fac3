"""Fast broad searches on PostgreSQL: tsvectors of the name and brand, and of the description, indexed.

Revision ID: 0999c_pg_search
Revises: 0110_catalog_changes
Create Date: 2026-12-06

A word found in 10 000 products cost ranking and counting all 10 000 (250 ms at 50 000 products).
`store/search.py` now counts up to a cap and, past it, ranks the products with the word in their name or
brand (`name_vector`), then, when those cannot fill the page, in their description (`description_vector`),
then a shortlist of the most popular others, instead of every match. Each vector has a GIN index of its
own, so a tier is found without reading the products outside it. No index on popularity: with it the
planner reads the whole table in that order for a filtered search that must count every match anyway
(50 ms instead of 2). PostgreSQL only: SQLite searches through its in-memory index.
"""

from __future__ import annotations

from alembic import op

revision = "0999c_pg_search"
down_revision = "0110_catalog_changes"
branch_labels = None
depends_on = None

UPGRADE = [
    """ALTER TABLE products ADD COLUMN name_vector tsvector GENERATED ALWAYS AS (
        to_tsvector('english', coalesce(brand, '')) || to_tsvector('english', coalesce(name, ''))) STORED""",
    """ALTER TABLE products ADD COLUMN description_vector tsvector GENERATED ALWAYS AS (
        to_tsvector('english', coalesce(description, ''))) STORED""",
    "CREATE INDEX ix_products_name_vector ON products USING GIN (name_vector)",
    "CREATE INDEX ix_products_description_vector ON products USING GIN (description_vector)",
]

DOWNGRADE = [
    "DROP INDEX IF EXISTS ix_products_description_vector",
    "DROP INDEX IF EXISTS ix_products_name_vector",
    "ALTER TABLE products DROP COLUMN IF EXISTS description_vector",
    "ALTER TABLE products DROP COLUMN IF EXISTS name_vector",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite searches through its in-memory index
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in DOWNGRADE:
        op.execute(statement)
