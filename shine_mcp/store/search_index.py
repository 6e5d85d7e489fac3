"""The catalog's search columns as arrays, so one search over 50 000 products is a few vector operations.

FTS5 stays the text index and bm25 the ranking. Each word's bm25 scores are asked of FTS5 once (a query
for that word alone) and kept; a search for several words adds them up, which is exactly what bm25
computes for an OR of phrases (each phrase's share depends only on that phrase). Filters are boolean
masks from the same SQL predicates the plain query uses, computed once per value and kept. Prices, stock
and the popularity order are arrays.

Never stale: triggers (migration 0110) count structural changes and log rows whose other columns
changed, and every search reads both inside its own read transaction. A structural change (a product
added, removed or re-worded) rebuilds; a stock or price change re-reads only the changed rows.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# bm25 column weights for brand, name, description, ingredients_text (FTS5 column order).
BM25 = "bm25(products_fts, 8.0, 10.0, 1.0, 3.0)"
PRICE_AT_MOST = "p.price_minor <= :v"
CURRENCY_IS = "p.currency = :v"
IN_STOCK = "p.stock > 0"
MAX_MASKS = 512  # 50 KB each on 50 000 products
MAX_TERM_POSTINGS = 4_000_000  # word scores kept, in (position, score) pairs: about 48 MB
MAX_ROW_REFRESH = 2_000  # more changed rows than this since the last search: rebuild instead


@dataclass(frozen=True)
class Clause:
    """One filter as SQL: a predicate on `products p` with at most one parameter, `:v`."""

    sql: str
    value: object = None
    negate: bool = False

    def render(self, name: str) -> str:
        predicate = self.sql.replace(":v", f":{name}")
        return f"NOT ({predicate})" if self.negate else predicate


def fts_phrase(term: str) -> str:
    """A word as a quoted FTS5 string: user text never becomes query syntax."""
    return '"' + term.replace('"', '""') + '"'


_VERSION = (
    "SELECT (SELECT structure FROM catalog_version WHERE id = 1), "
    "(SELECT coalesce(max(seq), 0) FROM catalog_row_changes), "
    "(SELECT coalesce(min(seq), 0) FROM catalog_row_changes)"
)
_COLUMNS = "rowid, id, price_minor, currency, stock, rating, review_count"


@dataclass
class _Columns:
    rowids: np.ndarray  # int64, ascending
    position: np.ndarray  # rowid -> position, -1 where no product
    id_order: np.ndarray  # each product's place in id order: the last tie-break
    price: np.ndarray
    currency: np.ndarray  # codes into `currencies`
    currencies: dict[str, int]
    stock: np.ndarray
    popularity: np.ndarray  # the same expression as the SQL order, in the same float64 arithmetic

    @classmethod
    def read(cls, connection: sqlite3.Connection) -> _Columns:
        rows = connection.execute(f"SELECT {_COLUMNS} FROM products ORDER BY rowid").fetchall()
        rowids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        position = np.full(int(rowids[-1]) + 1 if len(rows) else 1, -1, np.int64)
        position[rowids] = np.arange(len(rows))
        ids = np.array([r[1] for r in rows], dtype=object)
        id_order = np.empty(len(rows), np.int64)
        id_order[np.argsort(ids, kind="stable")] = np.arange(len(rows))
        currencies: dict[str, int] = {}
        currency = np.fromiter(
            (currencies.setdefault(r[3], len(currencies)) for r in rows), np.int64, len(rows)
        )
        columns = cls(
            rowids=rowids,
            position=position,
            id_order=id_order,
            price=np.fromiter((r[2] for r in rows), np.int64, len(rows)),
            currency=currency,
            currencies=currencies,
            stock=np.fromiter((r[4] for r in rows), np.int64, len(rows)),
            popularity=np.zeros(len(rows)),
        )
        columns.popularity = _popularity(rows)
        return columns

    def with_rows(self, rows: Sequence[tuple[Any, ...]]) -> _Columns:
        """A copy with these rows' prices, stock and popularity re-read (ids and rowids never change)."""
        places = self.position[[r[0] for r in rows]]
        copy = _Columns(
            rowids=self.rowids,
            position=self.position,
            id_order=self.id_order,
            price=self.price.copy(),
            currency=self.currency.copy(),
            currencies=dict(self.currencies),
            stock=self.stock.copy(),
            popularity=self.popularity.copy(),
        )
        copy.price[places] = [r[2] for r in rows]
        copy.currency[places] = [copy.currencies.setdefault(r[3], len(copy.currencies)) for r in rows]
        copy.stock[places] = [r[4] for r in rows]
        copy.popularity[places] = _popularity(rows)
        return copy


def _popularity(rows: Sequence[tuple[Any, ...]]) -> np.ndarray:
    """coalesce(rating, 0) * (1.0 - 1.0 / (1 + review_count)): a well-reviewed 4.5 beats a 5.0 with two."""
    rating = np.fromiter((r[5] if r[5] is not None else 0.0 for r in rows), np.float64, len(rows))
    reviews = np.fromiter((r[6] for r in rows), np.int64, len(rows))
    return rating * (1.0 - 1.0 / (1 + reviews))


@dataclass
class _Snapshot:
    structure: int
    seen: int  # the last row change applied
    columns: _Columns
    masks: OrderedDict[tuple[str, object], np.ndarray] = field(default_factory=OrderedDict)
    # word -> (positions, bm25) from FTS5; valid until the next structural change
    terms: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=OrderedDict)
    term_postings: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return len(self.columns.rowids)

    def mask(self, connection: sqlite3.Connection, clause: Clause) -> np.ndarray:
        columns = self.columns
        if clause.sql == PRICE_AT_MOST:
            found = columns.price <= int(str(clause.value))
        elif clause.sql == CURRENCY_IS:
            code = columns.currencies.get(str(clause.value), -1)
            found = columns.currency == code
        elif clause.sql == IN_STOCK:
            found = columns.stock > 0
        else:
            found = self._predicate(connection, clause.sql, clause.value)
        return ~found if clause.negate else found

    def _predicate(self, connection: sqlite3.Connection, sql: str, value: object) -> np.ndarray:
        key = (sql, value)
        with self.lock:
            found = self.masks.get(key)
            if found is not None:
                self.masks.move_to_end(key)
                return found
        found = np.zeros(self.size, bool)
        params = {"v": value} if ":v" in sql else {}
        hits = connection.execute(f"SELECT p.rowid FROM products p WHERE {sql}", params).fetchall()
        found[self.columns.position[[r[0] for r in hits]]] = True
        with self.lock:
            self.masks[key] = found
            while len(self.masks) > MAX_MASKS:
                self.masks.popitem(last=False)
        return found

    def term(self, connection: sqlite3.Connection, word: str) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            known = self.terms.get(word)
            if known is not None:
                self.terms.move_to_end(word)
                return known
        hits = connection.execute(
            f"SELECT rowid, {BM25} FROM products_fts WHERE products_fts MATCH ?", (fts_phrase(word),)
        ).fetchall()
        places = self.columns.position[np.fromiter((r[0] for r in hits), np.int64, len(hits))]
        scores = np.fromiter((r[1] for r in hits), np.float64, len(hits))
        known = (places, scores)
        with self.lock:
            self.terms[word] = known
            self.term_postings += len(hits)
            while self.term_postings > MAX_TERM_POSTINGS and len(self.terms) > 1:
                _word, (dropped, _scores) = self.terms.popitem(last=False)
                self.term_postings -= len(dropped)
        return known

    def with_rows(self, connection: sqlite3.Connection, changed: list[int], seen: int) -> _Snapshot:
        """A snapshot with `changed` rows re-read: their columns, and their place in every kept mask."""
        if not changed:
            return dataclasses.replace(self, seen=seen)
        marks = ", ".join("?" * len(changed))
        rows = connection.execute(
            f"SELECT {_COLUMNS} FROM products WHERE rowid IN ({marks})", changed
        ).fetchall()
        with self.lock:
            kept = list(self.masks.items())
        masks: OrderedDict[tuple[str, object], np.ndarray] = OrderedDict()
        if kept:  # every kept predicate, re-evaluated for the changed rows in one statement
            params: dict[str, object] = {f"v{i}": value for i, ((_sql, value), _mask) in enumerate(kept)}
            params |= {f"r{i}": rowid for i, rowid in enumerate(changed)}
            tests = ", ".join(
                f"({sql.replace(':v', f':v{i}')}) IS 1" for i, ((sql, _v), _mask) in enumerate(kept)
            )
            rowids = ", ".join(f":r{i}" for i in range(len(changed)))
            found = connection.execute(
                f"SELECT p.rowid, {tests} FROM products p WHERE p.rowid IN ({rowids})", params
            ).fetchall()
            places = self.columns.position[[r[0] for r in found]]
            for column, (key, mask) in enumerate(kept, start=1):
                updated = mask.copy()
                updated[places] = [bool(r[column]) for r in found]
                masks[key] = updated
        # The word scores and their lock are shared: the text did not change.
        return dataclasses.replace(self, seen=seen, columns=self.columns.with_rows(rows), masks=masks)


@dataclass(frozen=True)
class IndexedPage:
    rowids: list[int]
    total: int


class SearchIndex:
    """One per SQLite file, shared by its reader threads; each search brings the index up to date first."""

    def __init__(self) -> None:
        self._snapshot: _Snapshot | None = None
        self._refresh = threading.Lock()

    def current(self, connection: sqlite3.Connection) -> _Snapshot | None:
        """The snapshot matching what this connection's transaction sees, or None when this transaction
        is older than the index (a write landed in between; the caller falls back to SQL)."""
        structure, last, first = connection.execute(_VERSION).fetchone()
        with self._refresh:
            snapshot = self._snapshot
            if snapshot is not None and (structure, last) == (snapshot.structure, snapshot.seen):
                return snapshot
            if snapshot is not None and (
                structure < snapshot.structure or (structure == snapshot.structure and last < snapshot.seen)
            ):
                return None
            if snapshot is not None and structure == snapshot.structure and first <= snapshot.seen + 1:
                changed = [
                    r[0]
                    for r in connection.execute(
                        "SELECT DISTINCT product_rowid FROM catalog_row_changes WHERE seq > ?",
                        (snapshot.seen,),
                    )
                ]
                changed = [r for r in changed if r < len(snapshot.columns.position)]
                if len(changed) <= MAX_ROW_REFRESH:
                    self._snapshot = snapshot.with_rows(connection, changed, last)
                    return self._snapshot
            self._snapshot = _Snapshot(structure=structure, seen=last, columns=_Columns.read(connection))
            return self._snapshot

    def search(
        self,
        connection: sqlite3.Connection,
        terms: Sequence[str],
        clauses: Sequence[Clause],
        any_of: Sequence[Clause],
        *,
        limit: int,
        offset: int,
    ) -> IndexedPage | None:
        """Ids of one page, in the SQL search's order: more of `any_of` met, bm25, popularity, id."""
        snapshot = self.current(connection)
        if snapshot is None:
            return None
        keep = np.ones(snapshot.size, bool)
        for clause in clauses:
            keep &= snapshot.mask(connection, clause)
        keys: list[np.ndarray] = []
        hits: np.ndarray | None = None
        if any_of:
            hits = np.zeros(snapshot.size, np.int64)
            for clause in any_of:
                hits += snapshot.mask(connection, clause)
            keep &= hits > 0
        rank: np.ndarray | None = None
        if terms:
            rank = np.zeros(snapshot.size)
            matched = np.zeros(snapshot.size, bool)
            for word in terms:  # in query order: the same additions, in the same order, as bm25's loop
                places, scores = snapshot.term(connection, word)
                rank[places] += scores
                matched[places] = True
            keep &= matched
        chosen = np.flatnonzero(keep)
        if hits is not None:
            keys.append(-hits[chosen])
        if rank is not None:
            keys.append(rank[chosen])
        keys += [-snapshot.columns.popularity[chosen], snapshot.columns.id_order[chosen]]
        best = top(keys, offset + limit)[offset:]
        return IndexedPage(rowids=snapshot.columns.rowids[chosen[best]].tolist(), total=len(chosen))


def top(keys: Sequence[np.ndarray], k: int) -> np.ndarray:
    """The indices of the `k` smallest rows under lexicographic order of `keys` (first key first), sorted.

    Partitions on one key at a time and carries only the rows tied at the cut to the next key, so sorting
    touches about k rows instead of all of them.
    """
    n = len(keys[0]) if keys else 0
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, np.int64)
    certain: list[np.ndarray] = []
    candidates = np.arange(n)
    wanted = k
    for key in keys:
        if len(candidates) <= max(4 * wanted, 64):
            break
        values = key[candidates]
        cut = np.partition(values, wanted - 1)[wanted - 1]
        below = candidates[values < cut]
        certain.append(below)
        wanted -= len(below)
        candidates = candidates[values == cut]
        if wanted == 0:
            candidates = candidates[:0]
            break
    chosen = np.concatenate([*certain, candidates])
    order = np.lexsort([key[chosen] for key in reversed(keys)])
    return chosen[order][:k]
