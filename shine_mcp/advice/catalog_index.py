"""The catalog as arrays, so ranking 50 000 products is a few vector operations, not 50 000 loops.

Built once from the ranking columns (ingredient keys are already canonical since import) and rebuilt
when this process writes the catalog or, checked every `check_every` seconds, another process did; a
sale anywhere (stock, and the price when the cheapest variant sold out) re-reads only those columns.
Ranking uses it to choose; the chosen products are then re-read and re-checked from the database, so
a stale index can make a ranking slightly off but never lets an avoided ingredient through.
"""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np

from shine_mcp.advice.needs import EVIDENCE_WEIGHT
from shine_mcp.knowledge import KnowledgeBase
from shine_mcp.store.catalog import catalog_generation
from shine_mcp.store.tables import pipe_split
from shine_mcp.vocabulary import CATEGORIES, CONCERNS, SKIN_TYPES, TAGS

log = logging.getLogger("shine.catalog_index")

FAMILY = "family:"
RATING_PRIOR, RATING_PRIOR_WEIGHT = 3.8, 5.0
_LIGHT = re.compile(r"\b(gel|fluid|lotion|water|watery|lightweight|light|milk|oil-free|matte|mattifying)\b")
_RICH = re.compile(r"\b(cream|balm|butter|rich|nourishing|ointment|occlusive)\b")
TEXTURED = frozenset({"moisturiser", "sunscreen", "eye_care"})


def bits(values: list[str], vocabulary: tuple[str, ...]) -> int:
    return sum(1 << vocabulary.index(v) for v in values if v in vocabulary)


def texture_of(category: str, name: str, description: str) -> int:
    """-1 light, 1 rich, 0 unknown or not a product whose texture matters."""
    if category not in TEXTURED:
        return 0
    text = f"{name} {description[:400]}".lower()
    if _LIGHT.search(text):
        return -1
    return 1 if _RICH.search(text) else 0


@dataclass
class KeyFacts:
    evidence: np.ndarray | None  # per concern, the best evidence weight this ingredient brings
    pregnancy: bool
    sensitive: bool


class CatalogIndex:
    def __init__(self, rows: list[tuple[Any, ...]], kb: KnowledgeBase) -> None:
        n = len(rows)
        self.ids: list[str] = [r[0] for r in rows]
        self.position = {pid: i for i, pid in enumerate(self.ids)}
        self.category = np.array(
            [CATEGORIES.index(r[1]) if r[1] in CATEGORIES else -1 for r in rows], np.int8
        )
        self.price = np.array([r[2] for r in rows], np.int64)
        self.currencies: list[str] = sorted({r[3] for r in rows})
        self.currency = np.array([self.currencies.index(r[3]) for r in rows], np.int16)
        rating = np.array([r[4] if r[4] is not None else RATING_PRIOR for r in rows], np.float64)
        count = np.array([r[5] or 0 for r in rows], np.float64)
        bayes = (rating * count + RATING_PRIOR * RATING_PRIOR_WEIGHT) / (count + RATING_PRIOR_WEIGHT)
        self.rating = ((bayes - 1.0) / 4.0).astype(np.float32)
        self.stock = np.array([r[6] for r in rows], np.int32)
        self.skin = np.array([bits(pipe_split(r[7]), SKIN_TYPES) for r in rows], np.int16)
        self.tags = np.array([bits(pipe_split(r[8]), TAGS) for r in rows], np.int16)
        self.claimed = np.array([bits(pipe_split(r[9]), CONCERNS) for r in rows], np.int32)
        self.texture = np.array([texture_of(r[1], r[11], r[12] or "") for r in rows], np.int8)
        self.evidence = np.zeros((n, len(CONCERNS)), np.float32)
        self.pregnancy_unsafe = np.zeros(n, bool)
        self.sensitive_flag = np.zeros(n, bool)
        postings: dict[str, list[int]] = {}
        facts: dict[str, KeyFacts] = {}
        for i, row in enumerate(rows):
            for key in pipe_split(row[10]):
                postings.setdefault(key, []).append(i)
                fact = facts.get(key)
                if fact is None:
                    fact = facts[key] = _facts(kb, key)
                if fact.evidence is not None:
                    np.maximum(self.evidence[i], fact.evidence, out=self.evidence[i])
                if fact.pregnancy:
                    self.pregnancy_unsafe[i] = True
                if fact.sensitive:
                    self.sensitive_flag[i] = True
        self.postings = {key: np.array(found, np.int32) for key, found in postings.items()}
        self._category_masks: dict[tuple[str, ...], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def after_sales(self, rows: list[tuple[str, int, int]]) -> CatalogIndex | None:
        """This index with the prices and stock of `rows` (id, price, stock, ordered by id, as
        `store.catalog.sale_rows` reads them), or None when the products are not the same ones."""
        if len(rows) != len(self.ids) or any(row[0] != pid for row, pid in zip(rows, self.ids, strict=True)):
            return None
        fresh = copy.copy(self)  # the arrays nobody changes are shared; requests under way keep the old
        fresh.price = np.array([row[1] for row in rows], np.int64)
        fresh.stock = np.array([row[2] for row in rows], np.int32)
        return fresh

    def in_categories(self, categories: tuple[str, ...] | list[str]) -> np.ndarray:
        """A mask of products in any of `categories`, computed once per group (routines ask often)."""
        key = tuple(sorted(categories))
        found = self._category_masks.get(key)
        if found is None:
            found = self._category_masks[key] = np.isin(self.category, [CATEGORIES.index(c) for c in key])
        return found

    def containing(self, keys: set[str], words: list[str]) -> np.ndarray:
        """A mask of products holding any of `keys` (canonical names, `family:<id>`) or an ingredient whose
        name contains one of `words` (see `KnowledgeBase.exclusion_terms`)."""
        mask = np.zeros(len(self.ids), bool)
        lowered = {k.lower() for k in keys}
        for key in lowered:
            found = self.postings.get(key)
            if found is not None:
                mask[found] = True
        for word in words:
            needle = word.strip().lower()
            if not needle:
                continue
            for key, found in self.postings.items():
                if not key.startswith(FAMILY) and needle in key:
                    mask[found] = True
        return mask


def _facts(kb: KnowledgeBase, key: str) -> KeyFacts:
    if key.startswith(FAMILY):
        family = kb.families.get(key[len(FAMILY) :])
        claims = list(family.concerns) if family else []
        kinds = {c.kind for c in family.cautions} if family else set()
    else:
        claims = kb.concern_claims(key)
        kinds = kb.caution_kinds(key)
    evidence = None
    if claims:
        evidence = np.zeros(len(CONCERNS), np.float32)
        for claim in claims:
            at = CONCERNS.index(claim.concern)
            evidence[at] = max(evidence[at], EVIDENCE_WEIGHT[claim.evidence])
    return KeyFacts(evidence=evidence, pregnancy="pregnancy" in kinds, sensitive="sensitive_skin" in kinds)


class IndexCache:
    """One index per server. Rebuilt when this process changed the catalog; every `check_every` seconds
    a cheap fingerprint query (count, last update, stock sum) catches changes made by other processes.
    When only the stock sum moved, a sale (in this worker or another: a payment does not bump
    `catalog_generation`), `read_sales` re-reads prices and stock instead of rebuilding: at 50 000
    products a rebuild took ~1 s of CPU, in every worker, every `check_every` seconds while orders were
    being paid. `builds` and `sale_refreshes` count what happened, for benchmarks and tests."""

    def __init__(
        self,
        load: Callable[[], Awaitable[list[tuple[Any, ...]]]],
        fingerprint: Callable[[], Awaitable[tuple[Any, ...]]],
        kb: KnowledgeBase,
        check_every: float = 30.0,
        read_sales: Callable[[], Awaitable[list[tuple[str, int, int]]]] | None = None,
    ) -> None:
        self._load, self._fingerprint, self._kb, self._check_every = load, fingerprint, kb, check_every
        self._read_sales = read_sales
        self._index: CatalogIndex | None = None
        self._checked_at = 0.0
        self._generation = -1
        self._print: tuple[Any, ...] | None = None
        self._lock = anyio.Lock()
        self.builds = 0
        self.sale_refreshes = 0

    async def get(self) -> CatalogIndex:
        if (
            self._index is not None
            and self._generation == catalog_generation()
            and time.monotonic() - self._checked_at < self._check_every
        ):
            return self._index
        async with self._lock:
            generation = catalog_generation()
            if self._index is not None and self._generation == generation:
                if time.monotonic() - self._checked_at < self._check_every:
                    return self._index
                current = await self._fingerprint()
                self._checked_at = time.monotonic()
                if current == self._print:
                    return self._index
                refreshed = await self._after_sales(self._index, current)
                if refreshed is not None:
                    return refreshed
            fingerprint = await self._fingerprint()
            rows = await self._load()
            started = time.process_time()
            self._index = await anyio.to_thread.run_sync(CatalogIndex, rows, self._kb)
            self.builds += 1
            log.info(
                "catalog index built: %d products, %.0f ms of CPU (build %d of this process)",
                len(rows),
                (time.process_time() - started) * 1000,
                self.builds,
            )
            self._generation, self._print, self._checked_at = generation, fingerprint, time.monotonic()
            return self._index

    async def _after_sales(self, index: CatalogIndex, current: tuple[Any, ...]) -> CatalogIndex | None:
        """The index with fresh prices and stock when nothing but the stock sum changed, else None."""
        if self._read_sales is None or self._print is None or current[:-1] != self._print[:-1]:
            return None
        fresh = index.after_sales(await self._read_sales())
        if fresh is None:  # the products changed between the two reads: rebuild
            return None
        self._index, self._print = fresh, current
        self.sale_refreshes += 1
        log.debug("catalog index: prices and stock re-read after sales (%d products)", len(fresh))
        return fresh
