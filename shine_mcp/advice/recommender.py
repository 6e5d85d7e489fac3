"""Choosing products for a person: the hard-limit mask and scores over the catalog index, then the best
products re-read from the store and re-checked, what similar people liked, and what to suggest when few fit.

`Recommender` is the per-server state (catalog index, knowledge base, a short cache of neighbours' signals);
the advice tools call it and shape its answers. Routines build on it in `advice.routine`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from shine_mcp.advice.catalog_index import CatalogIndex, IndexCache
from shine_mcp.advice.collaborative import similar_people_scores
from shine_mcp.advice.needs import Needs
from shine_mcp.advice.ranking import Exclusions, best, cheapest, exclusions, hard_mask, scores, violations
from shine_mcp.advice.season import Season
from shine_mcp.auth.identity import Caller
from shine_mcp.knowledge import KnowledgeBase
from shine_mcp.money import format_money
from shine_mcp.services import Services
from shine_mcp.store.catalog import catalog_fingerprint, index_rows, read_products, sale_rows
from shine_mcp.store.db import Database
from shine_mcp.store.profiles import feedback_generation
from shine_mcp.store.signals import Signals, collaborative_signals
from shine_mcp.store.tables import ProductRow

CHEAP_PER_STEP = 4
SIGNALS_TTL = 60.0
JUST_ABOVE = 0.2  # "just over the budget": up to a fifth more
SIGNALS_CACHED = 10_000  # people whose neighbourhood is remembered at once

# (product as it is now in the store, its score, what similar people's liking added to it)
Picked = tuple[ProductRow, float, float]


def main_currency(index: CatalogIndex) -> str:
    if not index.currencies:
        return "USD"
    counts = np.bincount(index.currency, minlength=len(index.currencies))
    return index.currencies[int(counts.argmax())]


def cautions(kb: KnowledgeBase, product: ProductRow) -> list[str]:
    """What to watch with a product (sun sensitivity, irritation, allergens), one line per kind."""
    seen: dict[str, str] = {}
    for name in product.ingredients:
        for caution in kb.cautions(name):
            if caution.kind in ("photosensitivity", "irritation", "allergen") and caution.kind not in seen:
                seen[caution.kind] = f"{kb.canonical(name) or name}: {caution.advice}"
    return list(seen.values())


@dataclass
class Prepared:
    index: CatalogIndex
    needs: Needs
    excluded: Exclusions
    mask: np.ndarray
    score: np.ndarray
    by_product: dict[str, float]
    max_price_minor: int | None
    any_price: np.ndarray  # `mask` before the price limit


class Recommender:
    """The catalog index and the knowledge base of one server, and the ranking of products for a person."""

    def __init__(self, services: Services, kb: KnowledgeBase) -> None:
        self.services = services
        self.kb = kb
        self._signal_cache: dict[tuple[str, str | None], tuple[int, float, Signals]] = {}
        self.index = IndexCache(
            lambda: index_rows(services.db),
            lambda: catalog_fingerprint(services.db),
            kb,
            read_sales=lambda: sale_rows(services.db),
        )

    @property
    def db(self) -> Database:  # opened when the server starts, after the tools are registered
        return self.services.db

    async def _signals(self, user_id: str, skin_type: str | None) -> Signals:
        """Reading what neighbours did is the costly part of a recommendation: kept for `SIGNALS_TTL`
        seconds, and dropped as soon as anyone in this process rates a product or edits a profile
        (carts and orders of others may be up to a minute old in the signal, never in the results)."""
        key = (user_id, skin_type)
        now = time.monotonic()
        cached = self._signal_cache.get(key)
        if cached is not None and cached[0] == feedback_generation() and now - cached[1] < SIGNALS_TTL:
            return cached[2]
        generation = feedback_generation()
        signals = await collaborative_signals(self.db, user_id, skin_type)
        if len(self._signal_cache) > SIGNALS_CACHED:
            self._signal_cache.clear()
        self._signal_cache[key] = (generation, now, signals)
        return signals

    async def similar(
        self, caller: Caller, needs: Needs, index: CatalogIndex
    ) -> tuple[np.ndarray | None, dict[str, float], dict[str, float]]:
        signals = await self._signals(caller.user_id, needs.skin_type)
        me = (needs.skin_type, frozenset(c.concern for c in needs.concerns))
        array, by_product = similar_people_scores(signals, me, index)
        return array, by_product, signals.mine

    async def prepare(
        self,
        caller: Caller,
        needs: Needs,
        season: Season | None,
        index: CatalogIndex,
        max_price_minor: int | None,
    ) -> Prepared:
        """The hard-limit mask and the scores of every product for this person, computed once per call."""
        excluded = exclusions(self.kb, needs)
        assert needs.currency is not None
        any_price = hard_mask(
            index, needs, excluded, categories=None, currency=needs.currency, max_price_minor=None
        )
        similar, by_product, mine = await self.similar(caller, needs, index)
        for product_id, weight in mine.items():  # something you rated 1-2 stars is not suggested again
            at = index.position.get(product_id)
            if at is not None and weight < 0:
                any_price[at] = False
        mask = any_price if max_price_minor is None else any_price & (index.price <= max_price_minor)
        score = scores(index, needs, budget_minor=needs.budget_minor, season=season, similar=similar)
        return Prepared(index, needs, excluded, mask, score, by_product, max_price_minor, any_price)

    async def just_above(
        self, prepared: Prepared, categories: list[str] | None, than: float | None
    ) -> ProductRow | None:
        """The best product a little over the price limit (up to `JUST_ABOVE` more) that ranks above
        `than` (None: above nothing) and keeps every other limit."""
        index, limit = prepared.index, prepared.max_price_minor
        if limit is None:
            return None
        window = (
            prepared.any_price & (index.price > limit) & (index.price <= limit + round(limit * JUST_ABOVE))
        )
        if categories:
            window &= index.in_categories(categories)
        found = [
            p for p in best(index, window, prepared.score, 3) if than is None or prepared.score[p] > than
        ]
        if not found:
            return None
        fresh = await read_products(self.db, [index.ids[p] for p in found])
        for position in found:
            product = fresh.get(index.ids[position])
            if (
                product is not None
                and product.price_minor > limit
                and not violations(product, self.kb, prepared.needs, prepared.excluded)
            ):
                return product
        return None

    async def pick_groups(
        self, prepared: Prepared, groups: dict[tuple[str, ...], int]
    ) -> dict[tuple[str, ...], list[Picked]]:
        """`pick` for several category groups in one database read (a routine's steps); a group that
        loses products to the re-check is completed by its own `pick`."""
        index = prepared.index
        positions: dict[tuple[str, ...], list[int]] = {}
        for categories, count in groups.items():
            allowed = prepared.mask & index.in_categories(categories)
            found = best(index, allowed, prepared.score, count)
            if prepared.max_price_minor is not None:  # a tight budget needs the cheap options too
                found += [p for p in cheapest(index, allowed, CHEAP_PER_STEP) if p not in found]
            positions[categories] = found
        wanted = sorted({p for found in positions.values() for p in found})
        fresh = await read_products(self.db, [index.ids[p] for p in wanted])
        out: dict[tuple[str, ...], list[Picked]] = {}
        for categories, found in positions.items():
            kept = []
            for position in found:
                product = fresh.get(index.ids[position])
                if product is not None and self._allowed(prepared, product):
                    kept.append(
                        (product, float(prepared.score[position]), prepared.by_product.get(product.id, 0.0))
                    )
                else:
                    prepared.mask[position] = False
            if len(kept) < len(found):
                again, _ = await self.pick(prepared, list(categories), groups[categories])
                kept += [c for c in again if c[0].id not in {k[0].id for k in kept}]
            out[categories] = kept
        return out

    def _allowed(self, prepared: Prepared, product: ProductRow) -> bool:
        limit = prepared.max_price_minor
        return not violations(product, self.kb, prepared.needs, prepared.excluded) and (
            limit is None or product.price_minor <= limit
        )

    async def pick(
        self, prepared: Prepared, categories: list[str] | None, count: int
    ) -> tuple[list[Picked], int]:
        """The best `count` products in `categories` as they are now in the database, each re-checked
        against the hard limits; and how many products of those categories the limits excluded."""
        index = prepared.index
        in_categories = index.in_categories(categories) if categories else np.ones(len(index), bool)
        mask = prepared.mask & in_categories
        excluded_count = int(in_categories.sum() - mask.sum())
        picked: list[Picked] = []
        want = count
        tried: set[int] = set()
        while len(picked) < count:
            positions = [p for p in best(index, mask, prepared.score, want + 5) if p not in tried]
            if not positions:
                break
            tried.update(positions)
            fresh = await read_products(self.db, [index.ids[p] for p in positions])
            for position in positions:
                product = fresh.get(index.ids[position])
                if product is None or not self._allowed(prepared, product):
                    mask[position] = False
                    prepared.mask[position] = False
                    continue
                picked.append(
                    (product, float(prepared.score[position]), prepared.by_product.get(product.id, 0.0))
                )
                if len(picked) == count:
                    break
            want *= 2
        return picked, excluded_count

    async def suggestions(
        self, prepared: Prepared, category: str | None, picked: list[Picked], limit: int
    ) -> list[str]:
        """What the shopper could change when few products fit, and the best one just over the budget."""
        needs = prepared.needs
        found: list[str] = []
        if not needs.concerns and not needs.skin_type:
            found.append(
                "name a concern or skin type (or save them with update_profile): these picks only follow "
                "ratings and price"
            )
        if len(picked) < limit:
            if needs.budget_minor is not None:
                found.append("raise the budget: few products fit under it")
            if needs.avoid or needs.preferences:
                found.append(
                    "your avoided ingredients and preferences rule out many products; review them with get_profile"
                )
            if category:
                found.append("try without a category")
        if needs.budget_minor is not None:
            above = await self.just_above(
                prepared, [category] if category else None, picked[0][1] if picked else None
            )
            if above is not None:
                currency = needs.currency or "USD"
                price = format_money(above.price_minor, currency)
                found.append(
                    f"{above.name} ({above.brand}, {price}) is just over your "
                    f"{format_money(needs.budget_minor, currency)} budget and "
                    + ("suits you better than these" if picked else "fits everything else you asked for")
                )
        return found
