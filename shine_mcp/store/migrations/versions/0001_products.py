"""Products and their full-text index.

Revision ID: 0001_products
Revises:
Create Date: 2026-11-22

SQLite: an external-content FTS5 table kept in sync by triggers. PostgreSQL: a generated
tsvector column with a GIN index. A later migration that rebuilds `products` in batch mode must
re-create the triggers and run `INSERT INTO products_fts(products_fts) VALUES('rebuild')`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_products"
down_revision = None
branch_labels = None
depends_on = None

FTS_COLUMNS = "brand, name, description, ingredients_text"

SQLITE_FTS = [
    f"""CREATE VIRTUAL TABLE products_fts USING fts5(
        {FTS_COLUMNS}, content='products', content_rowid='rowid',
        tokenize='porter unicode61 remove_diacritics 2')""",
    f"""CREATE TRIGGER products_fts_ai AFTER INSERT ON products BEGIN
        INSERT INTO products_fts(rowid, {FTS_COLUMNS})
        VALUES (new.rowid, new.brand, new.name, new.description, new.ingredients_text);
    END""",
    f"""CREATE TRIGGER products_fts_ad AFTER DELETE ON products BEGIN
        INSERT INTO products_fts(products_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.rowid, old.brand, old.name, old.description, old.ingredients_text);
    END""",
    f"""CREATE TRIGGER products_fts_au AFTER UPDATE ON products BEGIN
        INSERT INTO products_fts(products_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.rowid, old.brand, old.name, old.description, old.ingredients_text);
        INSERT INTO products_fts(rowid, {FTS_COLUMNS})
        VALUES (new.rowid, new.brand, new.name, new.description, new.ingredients_text);
    END""",
]

POSTGRES_FTS = [
    """ALTER TABLE products ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(brand, '')), 'A') ||
        setweight(to_tsvector('english', coalesce(name, '')), 'A') ||
        setweight(to_tsvector('english', coalesce(ingredients_text, '')), 'B') ||
        setweight(to_tsvector('english', coalesce(description, '')), 'C')) STORED""",
    "CREATE INDEX ix_products_search_vector ON products USING GIN (search_vector)",
]


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("handle", sa.String(length=300), nullable=False),
        sa.Column("brand", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("price_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("size", sa.String(length=60), nullable=True),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("image_url", sa.String(), nullable=True),
        sa.Column("rating", sa.Float(), nullable=True),
        sa.Column("review_count", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("ingredients_text", sa.String(), nullable=False),
        sa.Column("ingredients", sa.JSON(), nullable=False),
        sa.Column("ingredient_keys", sa.String(), nullable=False),
        sa.Column("skin_types", sa.String(), nullable=False),
        sa.Column("concerns", sa.String(), nullable=False),
        sa.Column("tags", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("handle", name="uq_products_handle"),
    )
    op.create_index("ix_products_category_price", "products", ["category", "price_minor"])
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS if dialect == "sqlite" else POSTGRES_FTS if dialect == "postgresql" else []:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS products_fts")
    op.drop_table("products")
