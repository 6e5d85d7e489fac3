"""How often a refill should come: from the product's size and how much a day's use takes.

`suggest_interval(product)` reads `refill_usage.json` (amount per use and uses per day per category, each
with its basis and source) and divides the size by the daily use: a 30 ml serum at 0.25-0.3 ml twice a day
lasts 50-60 days, so every 7 weeks (between 7 and 8). The answer says its basis, so the shopper can choose
another interval knowing what this one assumed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from shine_mcp.store.tables import Product

_SIZE = re.compile(r"(?P<amount>\d+(?:[.,]\d+)?)\s*(?P<unit>ml|g|pads?|oz|fl\.? ?oz)\b", re.IGNORECASE)
_ML_PER_OZ = 29.5735


@dataclass(frozen=True)
class IntervalSuggestion:
    weeks: int  # the suggestion
    shortest_weeks: int  # with the larger amount per use
    longest_weeks: int  # with the smaller amount per use
    basis: str  # in words, for the shopper


@cache
def usage_table() -> dict[str, Any]:
    text = resources.files("shine_mcp.orders").joinpath("refill_usage.json").read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


def size_of(size: str | None) -> tuple[float, str] | None:
    """A pack size as (amount, "ml" | "pads"): grams count as ml, ounces are converted."""
    match = _SIZE.search(size or "")
    if match is None:
        return None
    amount = float(match.group("amount").replace(",", "."))
    unit = match.group("unit").lower().replace(" ", "").replace(".", "")
    if amount <= 0:
        return None
    if unit.startswith("pad"):
        return amount, "pads"
    if "oz" in unit:
        return amount * _ML_PER_OZ, "ml"
    return amount, "ml"


def _weeks(days: float, low: int, high: int) -> int:
    # Whole weeks, rounded down: the refill arrives before the last one runs out.
    return max(low, min(high, math.floor(days / 7)))


def suggest_interval(product: Product) -> IntervalSuggestion:
    """The refill interval for one product; a default (with the reason) when its size or use is unknown."""
    table = usage_table()
    low, high, default = int(table["min_weeks"]), int(table["max_weeks"]), int(table["default_weeks"])
    usage = table["categories"].get(product.category)
    size = size_of(product.size)
    if usage is None or size is None:
        missing = "its size" if size is None else "how much a use takes"
        return IntervalSuggestion(
            default, default, default, f"every {default} weeks: a default, as Shine does not know {missing}"
        )
    amount, unit = size
    uses_per_day = float(usage["uses_per_day"])
    if unit == "pads":
        if product.category not in table["pad_categories"]:
            return IntervalSuggestion(default, default, default, f"every {default} weeks: a default")
        days = amount / uses_per_day
        weeks = _weeks(days, low, high)
        return IntervalSuggestion(
            weeks,
            weeks,
            weeks,
            f"{amount:g} pads at one pad per use, {uses_per_day:g} uses a day: ~{days:.0f} days",
        )
    least, most = (float(v) for v in usage["ml_per_use"])
    longest_days, shortest_days = amount / (least * uses_per_day), amount / (most * uses_per_day)
    middle_days = (longest_days + shortest_days) / 2
    shortest, longest = _weeks(shortest_days, low, high), _weeks(longest_days, low, high)
    weeks = _weeks(middle_days, low, high)
    source = table["sources"][usage["source"]]
    basis = (
        f"{product.size} at {least:g}-{most:g} ml per use ({usage['basis']}) lasts about "
        f"{math.floor(shortest_days)}-{math.ceil(longest_days)} days, so every {weeks} weeks "
        f"({shortest}-{longest}). Basis: {source}"
    )
    return IntervalSuggestion(weeks, shortest, longest, basis)
