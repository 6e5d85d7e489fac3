"""Image-search queries from a stored skin report: its colour category, skin type and main concerns.

Only these coarse words leave Shine (never a metric value, an id or a photo). A concern counts when its
metric was measured with fair confidence and passes the cut-off below; the cut-offs are Shine's own
cosmetic heuristics on the metric scales of `shine_mcp/models/metrics.json`, not clinical thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# metric -> (cut-off, concern words for a search, what it means)
CONCERN_CUTOFFS: dict[str, tuple[float, str, str]] = {
    "redness": (3.0, "redness calming", "cheeks at least 3 a* redder than the forehead"),
    "shine": (15.0, "oily skin matte", "at least 15 % of the T-zone shows highlights"),
    "tone_unevenness": (2.5, "uneven tone", "blotchiness of 2.5 L* or more"),
    "dark_spots": (5.0, "dark spots", "5 or more candidate dark spots"),
    "texture": (4.0, "skin texture smoothing", "fine-scale roughness of 4 L* or more"),
}
MIN_CONFIDENCE = 0.5
# ITA category -> the words people use for skin tone in image captions
TONE_WORDS = {
    "very_light": "fair",
    "light": "light",
    "intermediate": "medium",
    "tan": "tan",
    "brown": "brown",
    "dark": "deep",
}
MAX_QUERIES = 3


@dataclass
class LookPlan:
    tone_category: str | None = None
    skin_type: str | None = None
    concerns: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan_queries(analysis: dict[str, Any]) -> LookPlan:
    plan = LookPlan()
    metrics = {m.get("name"): m for m in analysis.get("metrics", []) if isinstance(m, dict)}
    ita = metrics.get("ita") or {}
    category = (ita.get("details") or {}).get("category") if ita.get("value") is not None else None
    if isinstance(category, str) and category in TONE_WORDS:
        plan.tone_category = category
    else:
        plan.notes.append("the report has no skin colour category (withheld for this photo)")
    skin_type = (analysis.get("skin_type") or {}).get("value")
    if isinstance(skin_type, str):
        plan.skin_type = skin_type
    else:
        plan.notes.append("the report has no skin type (answer the questionnaire in analyze_skin for one)")
    scored = []
    for name, (cutoff, words, _meaning) in CONCERN_CUTOFFS.items():
        metric = metrics.get(name) or {}
        value, confidence = metric.get("value"), metric.get("confidence") or 0.0
        if isinstance(value, int | float) and confidence >= MIN_CONFIDENCE and value >= cutoff:
            scored.append((value / cutoff, name, words))
    scored.sort(reverse=True)
    plan.concerns = [name for _, name, _ in scored[:2]]

    tone = f"{TONE_WORDS[plan.tone_category]} skin" if plan.tone_category else "skin"
    kind = f"{plan.skin_type} skin" if plan.skin_type else ""
    for _, _, words in scored[:2]:
        plan.queries.append(f"{words} skincare {tone}".strip())
    plan.queries.append(" ".join(part for part in (f"glowing {tone}", kind, "natural look") if part))
    if not plan.concerns:
        plan.notes.append("no concern stood out in the report, so the search is for the overall look")
    plan.queries = list(dict.fromkeys(plan.queries))[:MAX_QUERIES]
    return plan
