"""Catalog search: the one place that knows SQLite FTS5 from PostgreSQL full-text search.

User text never reaches a MATCH or tsquery as syntax: it is cut into word tokens, and each token
is quoted (FTS5) or reduced to letters and digits (tsquery), so `retinol OR`, `"`, `*`, `NEAR(`
and emoji are just words or nothing.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import select as sa_select
from sqlalchemy import text
from sqlalchemy.engine import Connection, Dialect

from shine_mcp.store.db import Database, SqliteThreads
from shine_mcp.store.search_index import (
    BM25,
    CURRENCY_IS,
    IN_STOCK,
    PRICE_AT_MOST,
    Clause,
    SearchIndex,
    fts_phrase,
)
from shine_mcp.store.tables import Product, ProductRow

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_STOPWORD_TEXT = (
    "a an and any are as at be best but by for from good help i in is "
    "it me my of on or please recommend show some that the to under with without want need looking"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
MAX_TERMS = 12
# A well-reviewed 4.5 outranks a 5.0 with two reviews (the index computes the same in numpy).
_POPULARITY = "coalesce(p.rating, 0) * (1.0 - 1.0 / (1 + p.review_count))"


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


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_LIKE = " LIKE :v ESCAPE '\\'"


def filter_clauses(filters: SearchFilters) -> tuple[list[Clause], list[Clause]]:
    """The filters as SQL predicates: those that must all hold, and the concerns of which any must.

    Both search paths use these, so the index and the plain query cannot disagree on what a filter means.
    """
    clauses: list[Clause] = []
    if filters.category:
        clauses.append(Clause("p.category = :v", filters.category))
    if filters.skin_type:
        clauses.append(Clause("p.skin_types" + _LIKE, _like(f"|{filters.skin_type}|")))
    if filters.max_price_minor is not None:
        clauses.append(Clause(PRICE_AT_MOST, filters.max_price_minor))
        if filters.currency:
            clauses.append(Clause(CURRENCY_IS, filters.currency))
    for key in sorted(filters.exclude_keys):
        clauses.append(Clause("p.ingredient_keys" + _LIKE, _like(f"|{key}|"), negate=True))
    for word in sorted(filters.exclude_substrings):
        clauses.append(Clause("lower(p.ingredients_text)" + _LIKE, _like(word.lower()), negate=True))
    for tag in filters.required_tags:
        clauses.append(Clause("p.tags" + _LIKE, _like(f"|{tag}|")))
    if filters.in_stock_only:
        clauses.append(Clause(IN_STOCK))
    any_of = [Clause("p.concerns" + _LIKE, _like(f"|{concern}|")) for concern in filters.concerns]
    return clauses, any_of


def _where(filters: SearchFilters, params: dict[str, object]) -> tuple[list[str], list[str]]:
    """SQL conditions for the plain query, and the concern predicates (for the order) by name."""
    clauses, any_of = filter_clauses(filters)
    rendered: list[str] = []
    for i, clause in enumerate(clauses):
        params[f"f{i}"] = clause.value
        rendered.append(clause.render(f"f{i}"))
    concerns: list[str] = []
    for i, clause in enumerate(any_of):
        params[f"concern{i}"] = clause.value
        concerns.append(clause.render(f"concern{i}"))
    if concerns:
        rendered.append("(" + " OR ".join(concerns) + ")")
    return rendered, concerns


def _order(concerns: list[str], *ranks: str) -> str:
    """Products meeting more of the asked concerns first, then relevance, popularity, and id for stability."""
    parts = list(ranks)
    if concerns:
        hits = " + ".join(f"(CASE WHEN {c} THEN 1 ELSE 0 END)" for c in concerns)
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
    clauses, concerns = _where(filters, params)
    where = " AND ".join(clauses) or "1 = 1"
    if not filters.terms:
        return _plain("", "", f"FROM products p WHERE {where}", _order(concerns))
    # Each term is a quoted FTS5 string; OR between them, and bm25 ranks documents matching more.
    params["match"] = " OR ".join(fts_phrase(t) for t in filters.terms)
    # bm25() only works in the FTS query itself, hence the CTE; MATERIALIZED keeps SQLite from
    # driving the join from the category index and re-running MATCH per row (100x slower).
    if filters.category:
        # A category narrows through its index: gather those products first and test each hit against
        # that set, instead of looking every hit up in `products` (a third faster on 50 000 products;
        # without a category the set is most of the catalog and this would be slower).
        return _plain(
            f"WITH narrowed AS MATERIALIZED (SELECT p.rowid AS rid FROM products p WHERE {where}), "
            f"hits AS MATERIALIZED (SELECT rowid, {BM25} AS rank FROM products_fts WHERE products_fts MATCH :match) ",
            "WITH narrowed AS MATERIALIZED (SELECT p.rowid AS rid FROM products p WHERE "
            f"{where}), hits AS MATERIALIZED (SELECT rowid FROM products_fts WHERE products_fts MATCH :match) ",
            "FROM hits JOIN products p ON p.rowid = hits.rowid WHERE hits.rowid IN (SELECT rid FROM narrowed)",
            _order(concerns, "hits.rank"),
        )
    return _plain(
        f"WITH hits AS MATERIALIZED (SELECT rowid, {BM25} AS rank FROM products_fts WHERE products_fts MATCH :match) ",
        "WITH hits AS MATERIALIZED (SELECT rowid FROM products_fts WHERE products_fts MATCH :match) ",
        f"FROM hits JOIN products p ON p.rowid = hits.rowid WHERE {where}",
        _order(concerns, "hits.rank"),
    )


def _postgres_query(filters: SearchFilters, params: dict[str, object]) -> _Query:
    clauses, concerns = _where(filters, params)
    safe = [t for t in (re.sub(r"[^\w]", "", term) for term in filters.terms) if t]
    if filters.terms and not safe:
        clauses.insert(0, "1 = 0")  # only punctuation was asked for: like FTS5, match nothing
        order = _order(concerns)
    elif safe:
        params["tsquery"] = " | ".join(safe)
        clauses.insert(0, "p.search_vector @@ to_tsquery('english', :tsquery)")
        order = _order(concerns, "ts_rank_cd(p.search_vector, to_tsquery('english', :tsquery)) DESC")
    else:
        order = _order(concerns)
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


def _load_rows(
    connection: sqlite3.Connection, key: str, keys: list[Any], dialect: Dialect
) -> list[ProductRow]:
    """The page's products in the order of `keys` (ids or rowids), as the ORM would convert them."""
    if not keys:
        return []
    names, converters = _row_converters(dialect)
    marks = ", ".join("?" * len(keys))
    found: dict[Any, ProductRow] = {}
    for row in connection.execute(f"SELECT {key}, {names} FROM products WHERE {key} IN ({marks})", keys):
        values = {
            name: (convert(v) if convert else v)
            for (name, convert), v in zip(converters, row[1:], strict=True)
        }
        found[row[0]] = ProductRow(**values)
    return [found[k] for k in keys if k in found]


def _sqlite_search(
    connection: sqlite3.Connection, query: _Query, params: dict[str, object], dialect: Dialect
) -> SearchResult:
    limit, offset = int(str(params["limit"])), int(str(params["offset"]))
    rows = connection.execute(query.page, params).fetchall()
    total = _known_total(query, rows, offset, limit)
    if total is None:
        total = int(connection.execute(query.count, params).fetchone()[0])
    return SearchResult(products=_load_rows(connection, "id", [row[0] for row in rows], dialect), total=total)


def _indexed_search(
    connection: sqlite3.Connection,
    index: SearchIndex,
    filters: SearchFilters,
    *,
    limit: int,
    offset: int,
    dialect: Dialect,
) -> SearchResult | None:
    """The search through the in-memory index. None when this transaction predates the index."""
    clauses, any_of = filter_clauses(filters)
    page = index.search(connection, filters.terms, clauses, any_of, limit=limit, offset=offset)
    if page is None:
        return None
    return SearchResult(products=_load_rows(connection, "rowid", page.rowids, dialect), total=page.total)


@contextmanager
def _read_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One snapshot for a whole search: the index's freshness check, the page and the rows loaded for it
    (statement by statement, a sale in between could return a product the filter had just excluded)."""
    began = not connection.in_transaction  # a caller's own open transaction serves as well, and stays theirs
    if began:
        connection.execute("BEGIN")
    try:
        yield
    finally:
        if began:
            connection.rollback()  # read only: nothing to keep


_indexes: WeakKeyDictionary[SqliteThreads, SearchIndex] = WeakKeyDictionary()


def _index_for(threads: SqliteThreads) -> SearchIndex:
    index = _indexes.get(threads)
    if index is None:
        index = _indexes.setdefault(threads, SearchIndex())
    return index


async def catalog_brands(db: Database) -> list[str]:
    """Every brand in the catalog, longest name first, so a query is checked for 'La Roche-Posay' before
    any shorter name it contains."""
    async with db.session() as session:
        rows = (await session.execute(text("SELECT DISTINCT brand FROM products"))).all()
    return sorted({str(row[0]) for row in rows if row[0]}, key=lambda brand: (-len(brand), brand))


async def search_products(
    db: Database, filters: SearchFilters, *, limit: int, offset: int = 0, use_index: bool = True
) -> SearchResult:
    """One page of products matching the filters, best first, with the total number of matches.

    On a SQLite file the search runs in one hop to a reader thread (`Database.read`) through the
    in-memory index (`search_index.py`); `use_index=False`, PostgreSQL and in-memory databases use the
    SQL query: a narrow top-N (ids only, so the sort stays small) carrying the total as a window count,
    then only the page's rows are loaded. Both give the same products in the same order.
    """
    params: dict[str, object] = {"limit": limit, "offset": offset}
    if db.dialect != "postgresql" and db.threads is not None:
        dialect = db.engine.dialect
        index = _index_for(db.threads) if use_index else None

        def work(connection: Connection) -> SearchResult:
            driver = _driver(connection)
            with _read_transaction(driver):
                if index is not None:
                    found = _indexed_search(
                        driver, index, filters, limit=limit, offset=offset, dialect=dialect
                    )
                    if found is not None:
                        return found
                return _sqlite_search(
                    driver, _sqlite_query(filters, params), params, dialect
                )  # SQL only when needed

        return await db.read(work)
    query = _postgres_query(filters, params) if db.dialect == "postgresql" else _sqlite_query(filters, params)
    async with db.session() as session:
        if (
            db.dialect == "postgresql"
        ):  # one snapshot for the page and its rows (by default, one per statement)
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
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
