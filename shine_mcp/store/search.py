"""Catalog search: the one place that knows SQLite FTS5 from PostgreSQL full-text search.

User text never reaches a MATCH or tsquery as syntax: it is cut into word tokens, and each token
is quoted (FTS5) or reduced to letters and digits (tsquery), so `retinol OR`, `"`, `*`, `NEAR(`
and emoji are just words or nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from shine_mcp.store.db import Database
from shine_mcp.store.tables import Product

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
    products: list[Product]
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


def _sqlite_sql(filters: SearchFilters, params: dict[str, object]) -> str:
    clauses = _where(filters, params)
    if not filters.terms:
        where = " AND ".join(clauses) or "1 = 1"
        return (
            f"SELECT p.id, count(*) OVER () AS total FROM products p WHERE {where} ORDER BY {_order(filters)}"
        )
    # Each term is a quoted FTS5 string; OR between them, and bm25 ranks documents matching more.
    # bm25() only works in the FTS query itself, hence the CTE (the window count needs a plain rank column).
    params["match"] = " OR ".join('"' + t.replace('"', '""') + '"' for t in filters.terms)
    where = " AND ".join(clauses) or "1 = 1"
    return (
        f"WITH hits AS (SELECT rowid, {_BM25} AS rank FROM products_fts WHERE products_fts MATCH :match) "
        f"SELECT p.id, count(*) OVER () AS total FROM hits JOIN products p ON p.rowid = hits.rowid "
        f"WHERE {where} ORDER BY {_order(filters, 'hits.rank')}"
    )


def _postgres_sql(filters: SearchFilters, params: dict[str, object]) -> str:
    clauses = _where(filters, params)
    safe = [t for t in (re.sub(r"[^\w]", "", term) for term in filters.terms) if t]
    if filters.terms and not safe:
        clauses.insert(0, "1 = 0")  # only punctuation was asked for: like FTS5, match nothing
        order = _order(filters)
    elif safe:
        params["tsquery"] = " | ".join(safe)
        clauses.insert(0, "p.search_vector @@ to_tsquery('english', :tsquery)")
        rank = "ts_rank_cd(p.search_vector, to_tsquery('english', :tsquery))"
        order = _order(filters, f"{rank} DESC")
    else:
        order = _order(filters)
    where = " AND ".join(clauses) or "1 = 1"
    return f"SELECT p.id, count(*) OVER () AS total FROM products p WHERE {where} ORDER BY {order}"


async def search_products(
    db: Database, filters: SearchFilters, *, limit: int, offset: int = 0
) -> SearchResult:
    """One page of products matching the filters, best first, with the total number of matches."""
    params: dict[str, object] = {"limit": limit, "offset": offset}
    sql = _postgres_sql(filters, params) if db.dialect == "postgresql" else _sqlite_sql(filters, params)
    sql += " LIMIT :limit OFFSET :offset"
    async with db.session() as session:
        rows: list[RowMapping] = list((await session.execute(text(sql), params)).mappings())
        if not rows:
            total = 0
            if offset:
                # Past the end of a non-empty result: still tell the caller how many there are.
                count_params = dict(params, limit=1, offset=0)
                first = (await session.execute(text(sql), count_params)).mappings().first()
                total = int(first["total"]) if first else 0
            return SearchResult(products=[], total=total)
        ids = [row["id"] for row in rows]
        found = {p.id: p for p in await _load(session, ids)}
    return SearchResult(products=[found[i] for i in ids if i in found], total=int(rows[0]["total"]))


async def _load(session: AsyncSession, ids: list[str]) -> list[Product]:
    result = await session.execute(select(Product).where(col(Product.id).in_(ids)))
    return list(result.scalars())
