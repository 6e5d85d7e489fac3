"""The collaborative signal: what people like the caller rated well and bought.

"Like the caller" is measured two ways and combined: they liked the same products (cosine similarity
of the action weights), and they share the skin type and concerns in their profiles. A product's
signal is the similarity-weighted mean of their weights, shrunk towards zero when few people say
anything, so one enthusiastic stranger cannot move the ranking much.
"""

from __future__ import annotations

import math

import numpy as np

from shine_mcp.advice.catalog_index import CatalogIndex
from shine_mcp.store.signals import Signals

SHRINK = 2.0  # pseudo-count of neutral neighbours
TASTE_SHARE, PROFILE_SHARE = 0.6, 0.4


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    common = a.keys() & b.keys()
    if not common:
        return 0.0
    dot = sum(a[k] * b[k] for k in common)
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


def _profile_similarity(
    mine: tuple[str | None, frozenset[str]], theirs: tuple[str | None, frozenset[str]]
) -> float:
    skin = 1.0 if mine[0] is not None and mine[0] == theirs[0] else 0.0
    union = mine[1] | theirs[1]
    concerns = len(mine[1] & theirs[1]) / len(union) if union else 0.0
    return 0.5 * skin + 0.5 * concerns


def similar_people_scores(
    signals: Signals, me: tuple[str | None, frozenset[str]], index: CatalogIndex
) -> tuple[np.ndarray | None, dict[str, float]]:
    """Per product (aligned with `index`), -1..1; None when nobody similar said anything."""
    totals: dict[str, float] = {}
    weights: dict[str, float] = {}
    for user, actions in signals.others.items():
        similarity = TASTE_SHARE * _cosine(signals.mine, actions) + PROFILE_SHARE * _profile_similarity(
            me, signals.profiles.get(user, (None, frozenset()))
        )
        if similarity <= 0:
            continue
        for product, weight in actions.items():
            totals[product] = totals.get(product, 0.0) + similarity * weight
            weights[product] = weights.get(product, 0.0) + similarity
    if not totals:
        return None, {}
    by_product = {p: totals[p] / (weights[p] + SHRINK) for p in totals}
    out = np.zeros(len(index), np.float32)
    for product, value in by_product.items():
        at = index.position.get(product)
        if at is not None:
            out[at] = value
    return out, by_product
