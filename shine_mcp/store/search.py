"""Catalog search: the one place that knows SQLite FTS5 from PostgreSQL full-text search.

User text never reaches a MATCH or tsquery as syntax: it is cut into word tokens, and each token
is quoted (FTS5) or reduced to letters and digits (tsquery), so `retinol OR`, `"`, `*`, `NEAR(`
and emoji are just words or nothing.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import text
from sqlalchemy.engine import Connection, Dialect

from shine_mcp.store.db import Database
from shine_mcp.store.tables import Product, ProductRow

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_STOPWORD_TEXT = (
    "a an and any are as at be best but by for from good help i in is "
    "it me my of on or please recommend show some that the to under with without want need looking"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
MAX_TERMS = 12
# A well-reviewed 4.5 outranks a 5.0 with two reviews.
_POPULARITY = "coalesce(p.rating, 0) * (1.0 - 1.0 / (1 + p.review_count))"

# bm25 column weights for brand, name, description, ingredients_text (FTS5 column order).
_BM25 = "bm25(products_fts, 8.0, 10.0, 1.0, 3.0)"


def query_terms(query: str) -> list[str]:
    """Lower-cased word tokens worth searching for, in order, without duplicates."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(query.lower()):
        word = match.group().replace("’", "'")
        if word not in STOPWORDS and len(word) > 1:
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


@dataclass(frozen=True)
class SearchFilters:
    terms: tuple[str, ...] = ()
    category: str | None = None
    skin_type: str | None = None
    concerns: tuple[str, ...] = ()
    max_price_minor: int | None = None
    currency: str | None = None
    exclude_keys: frozenset[str] = frozenset()  # canonical names (lower case) and "family:<f>" keys
    exclude_substrings: frozenset[str] = frozenset()  # words matched inside the printed INCI list
    required_tags: tuple[str, ...] = ()
    in_stock_only: bool = False


@dataclass
class SearchResult:
    products: list[ProductRow]  # plain rows: ten ORM objects would cost more than the query
    total: int
    concern_hits: dict[str, int] = field(default_factory=dict)


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(filters: SearchFilters, params: dict[str, object]) -> list[str]:
    clauses: list[str] = []
    if filters.category:
        clauses.append("p.category = :category")
        params["category"] = filters.category
    if filters.skin_type:
        clauses.append("p.skin_types LIKE :skin_type ESCAPE '\\'")
        params["skin_type"] = _like(f"|{filters.skin_type}|")
    if filters.concerns:
        ors = []
        for i, concern in enumerate(filters.concerns):
            params[f"concern{i}"] = _like(f"|{concern}|")
            ors.append(f"p.concerns LIKE :concern{i} ESCAPE '\\'")
        clauses.append("(" + " OR ".join(ors) + ")")
    if filters.max_price_minor is not None:
        clauses.append("p.price_minor <= :max_price")
        params["max_price"] = filters.max_price_minor
        if filters.currency:
            clauses.append("p.currency = :currency")
            params["currency"] = filters.currency
    for i, key in enumerate(sorted(filters.exclude_keys)):
        params[f"xkey{i}"] = _like(f"|{key}|")
        clauses.append(f"p.ingredient_keys NOT LIKE :xkey{i} ESCAPE '\\'")
    for i, word in enumerate(sorted(filters.exclude_substrings)):
        params[f"xsub{i}"] = _like(word.lower())
        clauses.append(f"lower(p.ingredients_text) NOT LIKE :xsub{i} ESCAPE '\\'")
    for i, tag in enumerate(filters.required_tags):
        params[f"tag{i}"] = _like(f"|{tag}|")
        clauses.append(f"p.tags LIKE :tag{i} ESCAPE '\\'")
    if filters.in_stock_only:
        clauses.append("p.stock > 0")
    return clauses


def _order(filters: SearchFilters, *ranks: str) -> str:
    """Products meeting more of the asked concerns first, then relevance, popularity, and id for stability."""
    parts = list(ranks)
    if filters.concerns:
        hits = " + ".join(
            f"(CASE WHEN p.concerns LIKE :concern{i} ESCAPE '\\' THEN 1 ELSE 0 END)"
            for i in range(len(filters.concerns))
        )
        parts.insert(0, f"({hits}) DESC")
    return ", ".join([*parts, f"{_POPULARITY} DESC", "p.id"])


@dataclass(frozen=True)
class _Query:
    page: str  # ids of one page, best first (bounded top-N sort), and the total when `counted`
    count: str  # how many match in all
    counted: bool = False  # the page's second column is the total (a window count over the same scan)


def _plain(prefix: str, count_prefix: str, body: str, order: str) -> _Query:
    # count(*) OVER () totals the matches in the scan the sort needs anyway: one pass, not two.
    return _Query(
        page=f"{prefix}SELECT p.id, count(*) OVER () {body} ORDER BY {order} LIMIT :limit OFFSET :offset",
        count=f"{count_prefix}SELECT count(*) {body}",
        counted=True,
    )


def _sqlite_query(filters: SearchFilters, params: dict[str, object]) -> _Query:
    clauses = _where(filters, params)
    where = " AND ".join(clauses) or "1 = 1"
    if not filters.terms:
        return _plain("", "", f"FROM products p WHERE {where}", _order(filters))
    # Each term is a quoted FTS5 string; OR between them, and bm25 ranks documents matching more.
    params["match"] = " OR ".join('"' + t.replace('"', '""') + '"' for t in filters.terms)
    if not clauses and not filters.concerns:
        # Words only: rank and count inside the index, join just the page's rows.
        return _Query(
            page=f"SELECT p.id FROM (SELECT rowid, {_BM25} AS rank FROM products_fts "
            "WHERE products_fts MATCH :match ORDER BY rank, rowid LIMIT :limit OFFSET :offset) hits "
            "JOIN products p ON p.rowid = hits.rowid ORDER BY hits.rank, hits.rowid",
            count="SELECT count(*) FROM products_fts WHERE products_fts MATCH :match",
        )
    # bm25() only works in the FTS query itself, hence the CTE; MATERIALIZED keeps SQLite from
    # driving the join from the category index and re-running MATCH per row (100x slower).
    if filters.category:
        # A category narrows through its index: gather those products first and test each hit against
        # that set, instead of looking every hit up in `products` (a third faster on 50 000 products;
        # without a category the set is most of the catalog and this would be slower).
        return _plain(
            f"WITH narrowed AS MATERIALIZED (SELECT p.rowid AS rid FROM products p WHERE {where}), "
            f"hits AS MATERIALIZED (SELECT rowid, {_BM25} AS rank FROM products_fts WHERE products_fts MATCH :match) ",
            "WITH narrowed AS MATERIALIZED (SELECT p.rowid AS rid FROM products p WHERE "
            f"{where}), hits AS MATERIALIZED (SELECT rowid FROM products_fts WHERE products_fts MATCH :match) ",
            "FROM hits JOIN products p ON p.rowid = hits.rowid WHERE hits.rowid IN (SELECT rid FROM narrowed)",
            _order(filters, "hits.rank"),
        )
    return _plain(
        f"WITH hits AS MATERIALIZED (SELECT rowid, {_BM25} AS rank FROM products_fts WHERE products_fts MATCH :match) ",
        "WITH hits AS MATERIALIZED (SELECT rowid FROM products_fts WHERE products_fts MATCH :match) ",
        f"FROM hits JOIN products p ON p.rowid = hits.rowid WHERE {where}",
        _order(filters, "hits.rank"),
    )


def _postgres_query(filters: SearchFilters, params: dict[str, object]) -> _Query:
    clauses = _where(filters, params)
    safe = [t for t in (re.sub(r"[^\w]", "", term) for term in filters.terms) if t]
    if filters.terms and not safe:
        clauses.insert(0, "1 = 0")  # only punctuation was asked for: like FTS5, match nothing
        order = _order(filters)
    elif safe:
        params["tsquery"] = " | ".join(safe)
        clauses.insert(0, "p.search_vector @@ to_tsquery('english', :tsquery)")
        order = _order(filters, "ts_rank_cd(p.search_vector, to_tsquery('english', :tsquery)) DESC")
    else:
        order = _order(filters)
    return _plain("", "", f"FROM products p WHERE {' AND '.join(clauses) or '1 = 1'}", order)


def _known_total(query: _Query, rows: list[Any], offset: int, limit: int) -> int | None:
    """The total without a count query: from the window count, or when the first page holds everything."""
    if rows and query.counted:
        return int(rows[0][1])
    if offset == 0 and len(rows) < limit:
        return len(rows)
    return None


@cache
def _row_converters(dialect: Dialect) -> tuple[str, list[tuple[str, Callable[[Any], Any] | None]]]:
    """The product columns and SQLAlchemy's own result processors, so raw rows become the same values
    (JSON lists, datetimes) the ORM would give."""
    columns = list(Product.__table__.columns)  # type: ignore[attr-defined]
    converters = [(c.name, c.type.dialect_impl(dialect).result_processor(dialect, None)) for c in columns]
    return ", ".join(f'"{c.name}"' for c in columns), converters


def _driver(connection: Connection) -> sqlite3.Connection:
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def _sqlite_search(
    connection: sqlite3.Connection, query: _Query, params: dict[str, object], dialect: Dialect
) -> SearchResult:
    limit, offset = int(str(params["limit"])), int(str(params["offset"]))
    rows = connection.execute(query.page, params).fetchall()
    total = _known_total(query, rows, offset, limit)
    if total is None:
        total = int(connection.execute(query.count, params).fetchone()[0])
    ids = [row[0] for row in rows]
    if not ids:
        return SearchResult(products=[], total=total)
    names, converters = _row_converters(dialect)
    marks = ", ".join("?" * len(ids))
    by_id: dict[str, ProductRow] = {}
    for row in connection.execute(f"SELECT {names} FROM products WHERE id IN ({marks})", ids):
        values = {
            name: (convert(v) if convert else v) for (name, convert), v in zip(converters, row, strict=True)
        }
        by_id[values["id"]] = ProductRow(**values)
    return SearchResult(products=[by_id[i] for i in ids if i in by_id], total=total)


async def search_products(
    db: Database, filters: SearchFilters, *, limit: int, offset: int = 0
) -> SearchResult:
    """One page of products matching the filters, best first, with the total number of matches.

    The page is a narrow top-N query (ids only, so the sort stays small) carrying the total as a window
    count; then only the page's rows are loaded. On SQLite the whole search runs in one hop to a
    reader thread (`Database.read`) instead of a dozen round trips through aiosqlite.
    """
    params: dict[str, object] = {"limit": limit, "offset": offset}
    if db.dialect == "postgresql":
        query = _postgres_query(filters, params)
    else:
        query = _sqlite_query(filters, params)
        if db.threads is not None:
            dialect = db.engine.dialect
            return await db.read(
                lambda connection: _sqlite_search(_driver(connection), query, params, dialect)
            )
    async with db.session() as session:
        rows = list((await session.execute(text(query.page), params)).all())
        total = _known_total(query, rows, offset, limit)
        if total is None:
            total = int((await session.execute(text(query.count), params)).scalar_one())
        ids = [row[0] for row in rows]
        if not ids:
            return SearchResult(products=[], total=total)
        table = Product.__table__  # type: ignore[attr-defined]
        loaded = await session.execute(sa_select(table).where(table.c.id.in_(ids)))
        by_id = {row.id: ProductRow(**row._mapping) for row in loaded}
    return SearchResult(products=[by_id[i] for i in ids if i in by_id], total=total)
