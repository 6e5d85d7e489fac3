"""Ranking products for a person: hard limits first (never an avoided ingredient, nothing unsafe in
pregnancy, within budget, their stated preferences), then a score a person can follow.

The score combines, with fixed weights so the same inputs always give the same order:
- ingredient evidence for the needed concerns (strong > moderate > limited, weighted by where the
  concern came from: asked > profile > report > skin type),
- fit with the skin type, the rating (pulled towards the catalog prior when reviews are few),
- price within the budget, stock, the season's texture, and what similar people rated well and bought.
Ties break on product id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shine_mcp.advice.catalog_index import FAMILY, CatalogIndex, texture_of
from shine_mcp.advice.needs import SKIN_TYPE_CONCERNS, Needs
from shine_mcp.advice.season import Season
from shine_mcp.knowledge import ConcernClaim, KnowledgeBase
from shine_mcp.knowledge.schema import EVIDENCE_RANK
from shine_mcp.money import format_money
from shine_mcp.store.tables import ProductRow, pipe_split
from shine_mcp.vocabulary import CATEGORIES, CONCERNS, SKIN_TYPES, TAGS

WEIGHTS = {"concern": 0.5, "skin": 0.15, "rating": 0.15, "price": 0.1, "claimed": 0.05, "similar": 0.15}
OUT_OF_STOCK_PENALTY = 0.5
SENSITIVE_PENALTY = 0.25
SEASON_NUDGE = 0.05
# Preferences that are facts of the formula, checked on the ingredients rather than trusted from a tag.
PREFERENCE_FAMILIES = {
    "fragrance_free": ("fragrance", "essential_oil"),
    "alcohol_free": ("drying_alcohol",),
    "vegan": ("animal_derived",),
}
TAG_PREFERENCES = ("vegan", "cruelty_free", "reef_safe", "non_comedogenic")
# A claim that only means something for some categories: reef safety is about UV filters.
TAG_SCOPE = {"reef_safe": ("sunscreen",)}


def effective_concerns(needs: Needs) -> dict[str, float]:
    weights = needs.weights()
    if not weights and needs.skin_type:
        weights = dict.fromkeys(SKIN_TYPE_CONCERNS.get(needs.skin_type, ()), 0.5)
    if not weights and needs.sensitive:
        weights = dict.fromkeys(SKIN_TYPE_CONCERNS["sensitive"], 0.5)
    return weights


@dataclass(frozen=True)
class Exclusions:
    keys: frozenset[str]  # canonical names and family:<id>, lower-cased
    words: tuple[str, ...]  # unknown to the knowledge base: matched as text
    labels: dict[str, str]  # key or word → the person's own word, for explanations


def exclusions(kb: KnowledgeBase, needs: Needs) -> Exclusions:
    keys: set[str] = set()
    words: list[str] = []
    labels: dict[str, str] = {}
    for word in needs.avoid:
        known, texts = kb.exclusion_terms([word])
        keys |= known
        words += sorted(texts)
        for term in known | texts:
            labels.setdefault(term, word)
    for preference in needs.preferences:
        for family in PREFERENCE_FAMILIES.get(preference, ()):
            key = f"{FAMILY}{family}"
            keys.add(key)
            labels.setdefault(key, preference.replace("_", "-"))
    return Exclusions(frozenset(keys), tuple(words), labels)


def hard_mask(
    index: CatalogIndex,
    needs: Needs,
    excluded: Exclusions,
    *,
    categories: list[str] | None,
    currency: str,
    max_price_minor: int | None,
) -> np.ndarray:
    """Products every hard limit allows."""
    if currency not in index.currencies:
        return np.zeros(len(index), bool)
    mask: np.ndarray = index.currency == index.currencies.index(currency)
    if categories:
        mask &= np.isin(index.category, [CATEGORIES.index(c) for c in categories])
    if max_price_minor is not None:
        mask &= index.price <= max_price_minor
    if needs.pregnant:
        mask &= ~index.pregnancy_unsafe
    for preference in needs.preferences:
        if preference not in TAG_PREFERENCES:
            continue
        has_tag = (index.tags & (1 << TAGS.index(preference))) != 0
        scope = TAG_SCOPE.get(preference)
        if scope is not None:
            has_tag |= ~np.isin(index.category, [CATEGORIES.index(c) for c in scope])
        mask &= has_tag
    if excluded.keys or excluded.words:
        mask &= ~index.containing(set(excluded.keys), list(excluded.words))
    return mask


def scores(
    index: CatalogIndex,
    needs: Needs,
    *,
    budget_minor: int | None,
    season: Season | None,
    similar: np.ndarray | None,
) -> np.ndarray:
    concerns = effective_concerns(needs)
    total = np.zeros(len(index), np.float32)
    if concerns:
        columns = [CONCERNS.index(c) for c in concerns]
        weights = np.array(list(concerns.values()), np.float32)
        total += WEIGHTS["concern"] * (index.evidence[:, columns] @ weights) / weights.sum()
        wanted = sum(1 << c for c in columns)
        total += WEIGHTS["claimed"] * ((index.claimed & wanted) != 0)
    if needs.skin_type in SKIN_TYPES:
        bit = 1 << SKIN_TYPES.index(needs.skin_type)
        fit = np.where((index.skin & bit) != 0, 1.0, np.where(index.skin == 0, 0.6, 0.2))
        total += WEIGHTS["skin"] * fit.astype(np.float32)
    else:
        total += WEIGHTS["skin"] * 0.6
    if needs.sensitive:
        bit = 1 << SKIN_TYPES.index("sensitive")
        total += 0.05 * ((index.skin & bit) != 0)
        total -= SENSITIVE_PENALTY * index.sensitive_flag
    total += WEIGHTS["rating"] * index.rating
    if budget_minor:
        total += WEIGHTS["price"] * (1.0 - 0.5 * np.minimum(index.price / budget_minor, 2.0)).astype(
            np.float32
        )
    else:
        total += WEIGHTS["price"] * 0.5
    total -= OUT_OF_STOCK_PENALTY * (index.stock <= 0)
    if season is not None and season.texture is not None:
        wanted_texture = -1 if season.texture == "light" else 1
        total += SEASON_NUDGE * np.where(
            index.texture == wanted_texture, 1.0, np.where(index.texture == -wanted_texture, -1.0, 0.0)
        ).astype(np.float32)
    if similar is not None:
        total += WEIGHTS["similar"] * similar
    return total


def best(index: CatalogIndex, mask: np.ndarray, score: np.ndarray, count: int) -> list[int]:
    """Positions of the `count` best allowed products, best first; ties by product id."""
    allowed = np.flatnonzero(mask)
    if allowed.size == 0 or count <= 0:
        return []
    if allowed.size > count:
        part = np.argpartition(-score[allowed], count - 1)[:count]
        threshold = score[allowed[part]].min()
        allowed = allowed[score[allowed] >= threshold]  # keep every tie at the cut, then sort
    order = np.lexsort((allowed, -score[allowed]))
    return [int(i) for i in allowed[order][:count]]


def cheapest(index: CatalogIndex, mask: np.ndarray, count: int) -> list[int]:
    """Positions of the `count` cheapest allowed products; ties by product id."""
    allowed = np.flatnonzero(mask)
    if allowed.size == 0:
        return []
    order = np.lexsort((allowed, index.price[allowed]))
    return [int(i) for i in allowed[order][:count]]


# -- checks and explanations on the product as it is now in the database -------------------------


def violations(product: ProductRow, kb: KnowledgeBase, needs: Needs, excluded: Exclusions) -> list[str]:
    """The hard limits this product breaks, checked from its current ingredient list (not the index)."""
    found: list[str] = []
    names = list(product.ingredients)
    for name in names:
        keys = {k.lower() for k in kb.active_keys(name)}
        hit = keys & excluded.keys
        if hit:
            found.append(f"contains {name} ({excluded.labels.get(sorted(hit)[0], 'avoided')})")
        elif any(word in name.lower() for word in excluded.words):
            found.append(f"contains {name}")
        if needs.pregnant and "pregnancy" in kb.caution_kinds(name):
            found.append(f"{name} is not advised in pregnancy")
    tags = set(pipe_split(product.tags))
    for preference in needs.preferences:
        scope = TAG_SCOPE.get(preference)
        if (
            preference in TAG_PREFERENCES
            and preference not in tags
            and (scope is None or product.category in scope)
        ):
            found.append(f"not marked {preference.replace('_', '-')}")
    return found


@dataclass(frozen=True)
class Reason:
    text: str
    kind: str  # concern, skin_type, sensitive, avoid, preference, rating, budget, season, similar, stock
    source: str | None = None
    source_url: str | None = None


def explain(
    product: ProductRow,
    kb: KnowledgeBase,
    needs: Needs,
    excluded: Exclusions,
    *,
    season: Season | None,
    similar: float,
    budget_minor: int | None,
) -> list[Reason]:
    reasons: list[Reason] = []
    concerns = effective_concerns(needs)
    origin = {c.concern: c for c in needs.concerns}
    for concern in sorted(concerns, key=lambda c: -concerns[c])[:3]:
        claim_of = _best_claim(kb, product.ingredients, concern)
        if claim_of is None:
            continue
        name, claim = claim_of
        source = kb.source(claim.source_id)
        why = origin.get(concern)
        because = ""
        if why is not None and why.origin == "report" and why.detail:
            because = f" (your skin report: {why.detail})"
        elif why is not None and why.origin == "profile":
            because = " (from your profile)"
        elif why is None:
            because = f" (common for {needs.skin_type or 'sensitive'} skin)"
        reasons.append(
            Reason(
                text=f"contains {name}, which targets {concern.replace('_', ' ')}{because}: {claim.note} "
                f"({claim.evidence} evidence)",
                kind="concern",
                source=source.title,
                source_url=source.url,
            )
        )
    skin_types = pipe_split(product.skin_types)
    if needs.skin_type:
        if needs.skin_type in skin_types:
            reasons.append(Reason(f"made for {needs.skin_type} skin", "skin_type"))
        elif skin_types:
            reasons.append(
                Reason(
                    f"listed for {', '.join(skin_types)} skin, not specifically {needs.skin_type}",
                    "skin_type",
                )
            )
    families = {kb.family_of(n) for n in product.ingredients}
    if needs.sensitive and not families & {"fragrance", "essential_oil", "drying_alcohol"}:
        reasons.append(
            Reason("no fragrance, essential oils or drying alcohol, for your sensitive skin", "sensitive")
        )
    for word in needs.avoid:
        reasons.append(Reason(f"free of {word}, as you asked", "avoid"))
    tags = set(pipe_split(product.tags))
    for preference in needs.preferences:
        if preference in PREFERENCE_FAMILIES:
            reasons.append(
                Reason(f"{preference.replace('_', '-')}: checked on the ingredient list", "preference")
            )
        elif preference in tags:
            reasons.append(Reason(f"{preference.replace('_', '-')}, as the brand states", "preference"))
    if product.rating is not None and product.review_count:
        reasons.append(
            Reason(f"rated {product.rating:.1f}/5 by {product.review_count:,} reviewers", "rating")
        )
    if budget_minor is not None:
        reasons.append(
            Reason(
                f"{format_money(product.price_minor, product.currency)}, within your "
                f"{format_money(budget_minor, product.currency)} budget",
                "budget",
            )
        )
    if season is not None and season.texture is not None and product.category in ("moisturiser", "sunscreen"):
        texture = texture_of(product.category, product.name, product.description)
        if texture == (-1 if season.texture == "light" else 1):
            reasons.append(Reason(f"{season.texture} texture: {season.reason}", "season"))
    if similar > 0.05:
        reasons.append(Reason("people with similar skin rated or bought it", "similar"))
    if product.stock <= 0:
        reasons.append(Reason("out of stock at the moment", "stock"))
    return reasons


def _best_claim(kb: KnowledgeBase, names: list[str], concern: str) -> tuple[str, ConcernClaim] | None:
    """The ingredient with the strongest evidence for `concern`, the earliest on the label on a tie."""
    best_found: tuple[tuple[int, int], str, ConcernClaim] | None = None
    for position, name in enumerate(names):
        for claim in kb.concern_claims(name):
            if claim.concern != concern:
                continue
            rank = (EVIDENCE_RANK[claim.evidence], position)
            if best_found is None or rank < best_found[0]:
                best_found = (rank, kb.canonical(name) or name, claim)
    return None if best_found is None else (best_found[1], best_found[2])
