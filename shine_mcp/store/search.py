"""Catalog search: the one place that knows SQLite FTS5 from PostgreSQL full-text search.

User text never reaches a MATCH or tsquery as syntax: it is cut into word tokens, and each token
is quoted (FTS5) or reduced to letters and digits (tsquery), so `retinol OR`, `"`, `*`, `NEAR(`
and emoji are just words or nothing.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any
from weakref import WeakKeyDictionary

import anyio
from asyncpg.exceptions import InvalidCachedStatementError, OutdatedSchemaCacheError
from opentelemetry.trace import SpanKind
from sqlalchemy import select as sa_select
from sqlalchemy import text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from shine_mcp.store.catalog import variants_by_product, variants_query
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
from shine_mcp.store.tables import Product, ProductRow, ProductVariant
from shine_mcp.tracing import tracer, tracing_enabled

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
    more: bool = False  # more than `total` match (PostgreSQL counts a broad word search up to COUNT_CAP)
    # The page's variants by product, read with it when asked (`with_variants`); None when not asked.
    variants: dict[str, list[ProductVariant]] | None = None


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
class _Tier:
    page: str  # one page (:limit from :offset) of the tier, best first, ranked exactly; and the tier's size
    count: str  # how many products are in the tier


@dataclass(frozen=True)
class _Broad:
    """A PostgreSQL word search matching more than `COUNT_CAP` products, ranked without ranking them all."""

    capped: str  # how many match, counting no further than :cap, and when no more, the page
    tiers: tuple[_Tier, ...]  # the products with a word in their name or brand, then in their description
    others: str  # the most popular of the rest (:others of them) ranked, :rest from :skip
    # Words alone: the first tier's page, its size; when that is at most :count_cap, the matches counted
    # up to :cap; and when they are fewer, all of them ranked, paged. Each row tagged 0, 1 or 2.
    first: str = ""
    filtered: bool = False  # filters narrow the words' matches: few are expected, so count them first


@dataclass(frozen=True)
class _Query:
    page: str  # ids of one page, best first (bounded top-N sort), and the total when `counted`
    count: str  # how many match in all
    counted: bool = False  # the page's second column is the total (a window count over the same scan)
    broad: _Broad | None = None  # PostgreSQL: the cheaper plan when the words match very many products


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
        filtered = " AND ".join(clauses) or "1 = 1"
        clauses.insert(0, f"p.search_vector @@ {_TSQUERY}")
        order = _order(concerns, f"{_RANK} DESC")
        plain = _plain("", "", f"FROM products p WHERE {' AND '.join(clauses)}", order)
        narrowed = len(clauses) > 1
        return plain if concerns else dataclasses.replace(plain, broad=_broad(filtered, narrowed))
    else:
        order = _order(concerns)
    return _plain("", "", f"FROM products p WHERE {' AND '.join(clauses) or '1 = 1'}", order)


_TSQUERY = "to_tsquery('english', :tsquery)"
_RANK = f"ts_rank_cd(p.search_vector, {_TSQUERY})"
# Past this many matches a PostgreSQL word search reports "more than COUNT_CAP" and ranks a shortlist.
COUNT_CAP = 1000


def _broad(filtered: str, narrowed: bool) -> _Broad:
    """Ranking and counting every match costs time in proportion to the matches (250 ms for a word in
    10 000 of 50 000 products). Past `COUNT_CAP` matches, the products with a word in their name or brand
    come first, then those with it in their description, each tier ranked exactly as the plain query ranks
    (the name and brand weigh most; a product described with the word mostly lists it too); after them,
    the `COUNT_CAP - (those tiers)` most popular of the products with the word only in their ingredient
    list, ranked. The tiers and the shortlist are the same for every page, so pages neither repeat nor
    skip a product; a later tier is only read when the earlier ones cannot fill the page."""
    named = f"p.name_vector @@ {_TSQUERY}"
    described = f"p.description_vector @@ {_TSQUERY}"
    tiers = []
    for where in (f"{named} AND {filtered}", f"{described} AND NOT ({named}) AND {filtered}"):
        tiers.append(
            _Tier(
                # The order of `_order([], rank DESC)`, its keys computed in a subquery kept whole by
                # OFFSET 0: the window count then holds (id, rank, popularity) rows, not rows carrying
                # the 0.6 kB search vector (a brand's 1 964 products: 3.7 ms instead of 4.8).
                page=f"SELECT s.id, count(*) OVER () FROM (SELECT p.id, {_RANK} AS rank, "
                f"{_POPULARITY} AS popularity FROM products p WHERE {where} OFFSET 0) AS s "
                "ORDER BY s.rank DESC, s.popularity DESC, s.id LIMIT :limit OFFSET :offset",
                count=f"SELECT count(*) FROM products p WHERE {where}",
            )
        )
    others = f"p.search_vector @@ {_TSQUERY} AND NOT ({named}) AND NOT ({described}) AND {filtered}"
    capped = (
        f"capped AS MATERIALIZED (SELECT p.id, p.search_vector, {_POPULARITY} AS popularity "
        f"FROM products p WHERE p.search_vector @@ {_TSQUERY} AND {filtered} LIMIT :cap)"
    )
    ranked_capped = f"ts_rank_cd(c.search_vector, {_TSQUERY}) DESC, c.popularity DESC, c.id"
    return _Broad(
        # The matches' count, up to :cap; at most COUNT_CAP of them, they are all at hand: ranked and
        # paged in the same statement. Past it, none is ranked (the CASE skips ts_rank_cd).
        capped=(
            f"WITH {capped}, total AS (SELECT count(*) AS n FROM capped) "
            "SELECT total.n, page.id FROM total LEFT JOIN LATERAL (SELECT c.id FROM capped c "
            f"WHERE total.n < :cap ORDER BY {ranked_capped} LIMIT :limit OFFSET :offset) AS page ON true"
        ),
        tiers=tuple(tiers),
        others=(
            f"SELECT c.id FROM (SELECT p.id, p.search_vector, {_POPULARITY} AS popularity FROM products p "
            f"WHERE {others} ORDER BY {_POPULARITY} DESC, p.id LIMIT :others) AS c "
            f"ORDER BY ts_rank_cd(c.search_vector, {_TSQUERY}) DESC, c.popularity DESC, c.id "
            "LIMIT :rest OFFSET :skip"
        ),
        first=(
            f"WITH t0(id, n) AS MATERIALIZED ({tiers[0].page}), "
            "n0 AS (SELECT coalesce(max(t0.n), 0) AS n FROM t0), "
            # Every product naming a word matches it (name_vector's words are in search_vector): the
            # matches are the first tier and the others, and the others need counting only up to :cap
            # less the tier (a few dozen products read, instead of :cap).
            "rest AS MATERIALIZED (SELECT 1 FROM products p "
            f"WHERE p.search_vector @@ {_TSQUERY} AND NOT ({named}) AND {filtered} "
            "LIMIT greatest(:cap - (SELECT n FROM n0), 0)), "
            "total AS MATERIALIZED (SELECT (SELECT n FROM n0) + count(*) AS n FROM rest), "
            f"{capped} "
            "SELECT t0.id, t0.n, 0 FROM t0 "
            "UNION ALL SELECT NULL, total.n, 1 FROM total WHERE (SELECT n FROM n0) <= :count_cap "
            # CASE: the matches are counted only when the first tier is small enough to need it.
            "UNION ALL (SELECT c.id, NULL, 2 FROM capped c "
            "WHERE CASE WHEN (SELECT n FROM n0) <= :count_cap THEN (SELECT n FROM total) < :cap ELSE false END "
            f"ORDER BY {ranked_capped} LIMIT :limit OFFSET :offset)"
        ),
        filtered=narrowed,
    )


async def _broad_page(
    connection: AsyncConnection, broad: _Broad, params: dict[str, object], *, limit: int, offset: int
) -> tuple[list[str], int, bool]:
    """The page's ids, the total and whether more match than the total says."""
    # Words alone: the first tier first, as when more than COUNT_CAP products name a word (a brand),
    # nothing else is read. With filters, few match (883 for the benchmark's phrase with filters): counting
    # and ranking them in one statement answers it, and the first tier would be a wasted query.
    first = None if broad.filtered else await _fetch(connection, broad.tiers[0].page, params)
    if first and int(first[0][1]) > COUNT_CAP:
        return [str(row[0]) for row in first], COUNT_CAP, True
    capped = await _fetch(connection, broad.capped, {**params, "cap": COUNT_CAP + 1})
    if int(capped[0][0]) <= COUNT_CAP:
        return [str(row[1]) for row in capped if row[1] is not None], int(capped[0][0]), False
    if first is None:
        first = await _fetch(connection, broad.tiers[0].page, params)
    return await _tiered_page(connection, broad, params, first, limit=limit, offset=offset), COUNT_CAP, True


async def _tiered_page(
    connection: AsyncConnection,
    broad: _Broad,
    params: dict[str, object],
    first: list[Any],
    *,
    limit: int,
    offset: int,
) -> list[str]:
    ids: list[str] = []
    before = 0  # products in the tiers already read
    for i, tier in enumerate(broad.tiers):
        skip = max(0, offset - before)
        if i == 0:
            rows = first  # read with this page's limit and offset
        else:
            paged = {**params, "limit": limit - len(ids), "offset": skip}
            rows = await _fetch(connection, tier.page, paged)
        ids += [str(row[0]) for row in rows]
        if len(ids) == limit:
            return ids
        # Each row carries the tier's size; an empty page (offset past the tier) needs it counted.
        before += int(rows[0][1]) if rows else int((await _fetch(connection, tier.count, params))[0][0])
    shortlist = COUNT_CAP - before
    if shortlist <= 0:
        return ids
    others = {**params, "others": shortlist, "rest": limit - len(ids), "skip": max(0, offset - before)}
    return ids + [str(row[0]) for row in await _fetch(connection, broad.others, others)]


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
    async with db.reading() as session:
        rows = (await session.execute(text("SELECT DISTINCT brand FROM products"))).all()
    return sorted({str(row[0]) for row in rows if row[0]}, key=lambda brand: (-len(brand), brand))


async def search_products(
    db: Database,
    filters: SearchFilters,
    *,
    limit: int,
    offset: int = 0,
    use_index: bool = True,
    with_variants: bool = False,
) -> SearchResult:
    """One page of products matching the filters, best first, with the total number of matches.

    On a SQLite file the search runs in one hop to a reader thread (`Database.read`) through the
    in-memory index (`search_index.py`); `use_index=False`, PostgreSQL and in-memory databases use the
    SQL query: a narrow top-N (ids only, so the sort stays small) carrying the total as a window count,
    then only the page's rows are loaded. Both give the same products in the same order.
    `with_variants` reads the page's variants too, in the same hop or statement. On PostgreSQL the page,
    its rows and its variants are one statement, outside a transaction (`_postgres_attempt`): one round
    trip (with words, two more every fifth search, to prepare it anew so that it is planned with them:
    `_fetch`), where the pool's ping, BEGIN, the page, its rows, its variants and ROLLBACK were eight.
    """
    params: dict[str, object] = {"limit": limit, "offset": offset}
    if db.dialect != "postgresql" and db.threads is not None:
        dialect = db.engine.dialect
        index = _index_for(db.threads) if use_index else None

        def work(connection: Connection) -> SearchResult:
            driver = _driver(connection)
            with _read_transaction(driver):
                found = None
                if index is not None:
                    found = _indexed_search(
                        driver, index, filters, limit=limit, offset=offset, dialect=dialect
                    )
                if found is None:  # SQL only when needed
                    found = _sqlite_search(driver, _sqlite_query(filters, params), params, dialect)
                if with_variants:
                    ids = [p.id for p in found.products]
                    found.variants = (
                        variants_by_product(connection.execute(variants_query(ids))) if ids else {}
                    )
                return found

        return await db.read(work)
    if db.dialect == "postgresql":
        return await _postgres_search(db, filters, params, with_variants=with_variants)
    query = _sqlite_query(filters, params)
    async with db.reading() as session:
        rows = list((await session.execute(text(query.page), params)).all())
        known = _known_total(query, rows, offset, limit)
        if known is None:
            known = int((await session.execute(text(query.count), params)).scalar_one())
        ids, total = [row[0] for row in rows], known
        if not ids:
            return SearchResult(products=[], total=total, variants={} if with_variants else None)
        table = Product.__table__  # type: ignore[attr-defined]
        loaded = await session.execute(sa_select(table).where(table.c.id.in_(ids)))
        by_id = {row.id: ProductRow(**row._mapping) for row in loaded}
        variants = variants_by_product(await session.execute(variants_query(ids))) if with_variants else None
    products = [by_id[i] for i in ids if i in by_id]
    return SearchResult(products=products, total=total, variants=variants)


async def _postgres_search(
    db: Database, filters: SearchFilters, params: dict[str, object], *, with_variants: bool
) -> SearchResult:
    """Read only, so a statement that failed on a connection the server had dropped is tried once more on
    a new one (the pool pings only connections left idle: `db._ping_when_idle`)."""
    try:
        return await _postgres_attempt(db, filters, params, with_variants=with_variants)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    except _Dropped:
        pass
    return await _postgres_attempt(db, filters, params, with_variants=with_variants)


async def _postgres_attempt(
    db: Database, filters: SearchFilters, params: dict[str, object], *, with_variants: bool
) -> SearchResult:
    """Most searches are answered by one statement: the page, its total, its products' rows and their
    shades (`_with_rows`), outside any transaction (one statement is one snapshot; BEGIN and ROLLBACK
    were two more round trips). A broad word search whose first statement cannot tell its page reads
    its tiers in several statements, in one REPEATABLE READ snapshot (`_snapshot`). Every statement goes
    through asyncpg directly (`_fetch`)."""
    limit, offset = int(str(params["limit"])), int(str(params["offset"]))
    query = _postgres_query(filters, params)
    async with db.engine.connect() as connection:  # SQLAlchemy runs nothing on it: no BEGIN (`_fetch`)
        if query.broad is None:
            rows = await _with_rows(connection, query.page, "id, total", params, with_variants)
            if rows:
                known = int(rows[0][_TOTAL])  # the window count
            elif offset == 0:
                known = 0
            else:  # an empty page past the end: the count alone
                known = int((await _fetch(connection, query.count, params))[0][0])
            return _result(rows, known, False, with_variants)
        broad = query.broad
        if broad.filtered:  # few are expected: count (up to the cap) and rank them all
            capped = {**params, "cap": COUNT_CAP + 1}
            rows = await _with_rows(connection, broad.capped, "total, id", capped, with_variants)
            if int(rows[0][_TOTAL]) <= COUNT_CAP:
                return _result(rows, int(rows[0][_TOTAL]), False, with_variants)
        else:
            first = {**params, "cap": COUNT_CAP + 1, "count_cap": COUNT_CAP}
            rows = await _with_rows(connection, broad.first, "id, total, kind", first, with_variants)
            named, counted, ranked = ([row for row in rows if row[_KIND] == k] for k in (0, 1, 2))
            if not named and offset > 0:  # past the first tier: its size unknown, the count with it
                counted = ranked = []
            if named and int(named[0][_TOTAL]) > COUNT_CAP:  # more than COUNT_CAP name a word (a brand)
                return _result(named, COUNT_CAP, True, with_variants)
            if counted and int(counted[0][_TOTAL]) <= COUNT_CAP:  # few match: all of them ranked
                return _result(ranked, int(counted[0][_TOTAL]), False, with_variants)
            if len(named) == limit:  # many match, and the first tier fills the page
                return _result(named, COUNT_CAP, True, with_variants)
    async with db.engine.connect() as connection, _snapshot(connection):
        ids, total, more = await _broad_page(connection, broad, params, limit=limit, offset=offset)
        listed = {**params, "ids": ids}
        rows = await _with_rows(connection, _LISTED, "id, total", listed, with_variants)
    return _result(rows, total, more, with_variants)


# A page given by its ids, in their order (the multi-statement searches find the ids first).
_LISTED = (
    "SELECT u.id, NULL::bigint FROM unnest(CAST(:ids AS text[])) WITH ORDINALITY AS u(id, n) ORDER BY u.n"
)


@cache
def _product_columns() -> tuple[str, tuple[str, ...]]:
    """The products' columns as `_with_rows` selects them, and their names in that order (`ProductRow`'s
    fields are the same, in the same order: `_result` builds rows by position)."""
    names = tuple(c.name for c in Product.__table__.columns)  # type: ignore[attr-defined]
    assert names == tuple(f.name for f in dataclasses.fields(ProductRow)), (
        "ProductRow's fields != the columns"
    )
    return ", ".join(f'p."{name}"' for name in names), names


# The columns `_with_rows` adds after the product's: the page's total, its kind, the variants as JSON.
_TOTAL, _KIND, _VARIANTS = -3, -2, -1


class _Dropped(Exception):
    """The server closed the connection under a statement sent through asyncpg directly; the pool has
    dropped the connection and a read-only search may be tried again."""


@dataclass(frozen=True)
class _Positional:
    sql: str  # the statement as SQLAlchemy sends it to asyncpg: $1, $2 … for the :names
    names: tuple[str, ...]  # the parameters' names in the order of $1, $2 …


@lru_cache(maxsize=512)
def _positional(statement: str, dialect: Dialect) -> _Positional:
    compiled: Any = text(statement).compile(dialect=dialect)  # a SQLCompiler: it has `positiontup`
    return _Positional(compiled.string, tuple(compiled.positiontup or ()))


async def _fetch(connection: AsyncConnection, statement: str, params: dict[str, object]) -> list[Any]:
    """The rows of `statement` (`:name` parameters, as for `text()`), through the connection's asyncpg
    connection: without SQLAlchemy's execution and result machinery (~0.7 ms of CPU per search, measured
    in paired runs), in the transaction of `_snapshot` if one is open, else on its own.

    A statement with the search's words (`:tsquery`) is planned with this call's words every time: a
    prepared statement gets a generic plan from its sixth run on (its plan for any words), which computes
    `to_tsquery` of the parameter again for every row it filters or ranks and cannot tell from the words
    how many rows match, which the statements here are shaped by (the benchmark's word searches took 9-12 ms
    instead of 4-7 in paired runs). So it is prepared anew after five runs (`_run`): two round trips more
    every fifth search (closing the one it replaces, parsing the new one); parsing it for every search (an
    unnamed statement) cost 0.2-1 ms more a search."""
    positional = _positional(statement, connection.dialect)
    arguments = [params[name] for name in positional.names]
    driver = await _asyncpg(connection)
    with_words = "tsquery" in params
    try:
        if tracing_enabled():  # SQLAlchemy's events, which give statements their spans, do not see these
            attributes = {"db.system.name": "postgresql", "db.operation.name": "SELECT"}
            with tracer().start_as_current_span("db SELECT", kind=SpanKind.CLIENT, attributes=attributes):
                return await _run(driver, positional.sql, arguments, with_words)
        return await _run(driver, positional.sql, arguments, with_words)
    except Exception as error:
        await _dropped(connection, driver, error)
        raise


async def _run(driver: Any, sql: str, arguments: list[object], with_words: bool) -> list[Any]:
    if not with_words:
        return list(await driver.fetch(sql, *arguments))  # asyncpg prepares it once per connection
    kept = _with_words.setdefault(driver, OrderedDict())
    fresh = kept.pop(sql, None)
    if fresh is None or fresh.runs >= _CUSTOM_RUNS:
        fresh = _Fresh(await driver.prepare(sql))  # the one it replaces is closed once unreferenced
    kept[sql] = fresh  # the most recently used last
    while len(kept) > _KEPT_PER_CONNECTION:
        kept.popitem(last=False)
    fresh.runs += 1
    try:
        return list(await fresh.statement.fetch(*arguments))
    except (InvalidCachedStatementError, OutdatedSchemaCacheError):  # a migration changed a table it reads
        kept.pop(sql, None)
        return list(await (await driver.prepare(sql, name="")).fetch(*arguments))


# PostgreSQL plans a prepared statement with its values for its first five runs, and may then settle on a
# generic plan (the PREPARE documentation's "current rule"); `test_a_word_search_is_planned_with_its_words_
# every_time` checks that none was used.
_CUSTOM_RUNS = 5
_KEPT_PER_CONNECTION = 32  # statement shapes with words (filters make them differ) kept per connection


@dataclass
class _Fresh:
    statement: Any  # asyncpg's PreparedStatement
    runs: int = 0


_with_words: WeakKeyDictionary[Any, OrderedDict[str, _Fresh]] = WeakKeyDictionary()


async def _asyncpg(connection: AsyncConnection) -> Any:
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    return driver


async def _dropped(connection: AsyncConnection, driver: Any, error: Exception) -> None:
    """When the server had closed the connection: the pool discards it and the search may be tried again."""
    if driver.is_closed():
        await connection.invalidate()
        raise _Dropped from error


@asynccontextmanager
async def _snapshot(connection: AsyncConnection) -> AsyncIterator[None]:
    """One REPEATABLE READ snapshot for the statements of `_fetch` in the block, read only and rolled back
    (SQLAlchemy's own transaction would begin only with a statement of its own)."""
    driver = await _asyncpg(connection)
    transaction = driver.transaction(isolation="repeatable_read", readonly=True)
    try:
        await transaction.start()
    except Exception as error:
        await _dropped(connection, driver, error)
        raise
    try:
        yield
    finally:
        if not driver.is_closed():
            # Even when the search was cancelled: SQLAlchemy, which knows nothing of this transaction,
            # would return the connection to the pool inside it.
            with anyio.CancelScope(shield=True):
                await transaction.rollback()


async def _with_rows(
    connection: AsyncConnection, page: str, names: str, params: dict[str, object], with_variants: bool
) -> list[Any]:
    """The page statement `page` (its columns named by `names`: an `id`, a `total`, and a `kind` when it
    returns several candidate lists) and, in the same statement, the page's product rows and,
    `with_variants`, each one's variants as JSON in the shop's order: one round trip instead of three.
    Rows in the page's order (a materialized CTE is read back in the order its rows were produced, as
    the page's ORDER BY left them); a page row without a product (a total alone) has a null `id`. Each
    row is the product's columns (`_product_columns`), then `_TOTAL`, `_KIND` and `_VARIANTS`."""
    listed, _names = _product_columns()
    variants = (
        "(SELECT coalesce(json_agg(v ORDER BY v.position, v.id), '[]'::json) "
        "FROM product_variants v WHERE v.product_id = p.id)"
        if with_variants
        else "NULL::json"
    )
    kind = "page.kind" if "kind" in names else "0"
    statement = (
        f"WITH page({names}) AS MATERIALIZED ({page}), "
        f"numbered AS (SELECT page.id, page.total, {kind} AS kind, row_number() OVER () AS ord FROM page) "
        f"SELECT {listed}, n.total AS page_total, n.kind AS page_kind, {variants} AS page_variants "
        "FROM numbered n LEFT JOIN products p ON p.id = n.id ORDER BY n.ord"
    )
    return await _fetch(connection, statement, params)


def _variant(values: dict[str, Any]) -> ProductVariant:
    """A variant from its row as `json_agg` gave it, built as SQLAlchemy builds an object it loads (its
    values straight into the object): `ProductVariant(**values)` sets each attribute through SQLAlchemy's
    and pydantic's hooks, ~40 µs a variant. Table models are not validated either way."""
    variant: ProductVariant = _VARIANT_CLASS.new_instance()
    variant.__dict__.update(values)
    object.__setattr__(variant, "__pydantic_fields_set__", set(values))
    return variant


_VARIANT_CLASS: Any = ProductVariant._sa_class_manager  # type: ignore[attr-defined]


def _result(rows: list[Any], total: int, more: bool, with_variants: bool) -> SearchResult:
    found = [row for row in rows if row[0] is not None]  # the product's id
    _listed, names = _product_columns()
    width = len(names)
    products = [ProductRow(*row[:width]) for row in found]
    variants = {row[0]: [_variant(v) for v in row[_VARIANTS]] for row in found} if with_variants else None
    return SearchResult(products=products, total=total, more=more, variants=variants)
