"""What a person needs from their products, gathered from what they say now, their profile and a skin report.

Stated words win over the profile, the profile over a report; every concern remembers where it came
from, so a recommendation can say "you asked for…" or "your report shows…".
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal

from shine_mcp.vocabulary import CONCERNS, SKIN_TYPES, TAGS

Origin = Literal["asked", "profile", "report", "skin_type"]
ORIGIN_WEIGHT: dict[Origin, float] = {"asked": 1.0, "profile": 0.9, "report": 0.7, "skin_type": 0.5}
EVIDENCE_WEIGHT = {"strong": 1.0, "moderate": 0.6, "limited": 0.3}

# When nobody names a concern, the skin type still says what a product should do.
SKIN_TYPE_CONCERNS: dict[str, tuple[str, ...]] = {
    "dry": ("dryness", "dehydration"),
    "oily": ("oiliness", "large_pores"),
    "combination": ("oiliness", "dehydration"),
    "sensitive": ("sensitivity", "redness"),
    "normal": ("dehydration",),
}
PREFERENCES: tuple[str, ...] = TAGS


class VocabularyError(ValueError):
    """A word outside a closed vocabulary; the message names the closest allowed ones."""


def closest(word: str, allowed: tuple[str, ...]) -> list[str]:
    normal = word.strip().lower().replace(" ", "_").replace("-", "_")
    return difflib.get_close_matches(normal, allowed, n=3, cutoff=0.5)


def _normal(word: str) -> str:
    return word.strip().lower().replace(" ", "_").replace("-", "_")


def check_vocabulary(words: list[str], allowed: tuple[str, ...], what: str) -> list[str]:
    """`words` in their canonical spelling, or a VocabularyError suggesting the closest allowed words."""
    out: list[str] = []
    for word in words:
        normal = _normal(word)
        if normal.endswith("s") and normal[:-1] in allowed:  # "dark spot" / "fine line" plurals
            normal = normal[:-1]
        if normal + "s" in allowed:
            normal += "s"
        if normal not in allowed:
            near = closest(word, allowed)
            hint = f"did you mean {' or '.join(near)}?" if near else f"known {what}s: {', '.join(allowed)}"
            raise VocabularyError(f"{word!r} is not a {what} Shine knows; {hint}")
        if normal not in out:
            out.append(normal)
    return out


def check_concerns(words: list[str]) -> list[str]:
    return check_vocabulary(words, CONCERNS, "concern")


def check_skin_type(word: str) -> str:
    return check_vocabulary([word], SKIN_TYPES, "skin type")[0]


def check_preferences(words: list[str]) -> list[str]:
    return check_vocabulary(words, PREFERENCES, "preference")


@dataclass(frozen=True)
class NeededConcern:
    concern: str
    origin: Origin
    detail: str | None = None  # for a report: what was measured

    @property
    def weight(self) -> float:
        return ORIGIN_WEIGHT[self.origin]


@dataclass
class Needs:
    concerns: list[NeededConcern] = field(default_factory=list)
    skin_type: str | None = None
    skin_type_origin: Origin | None = None
    sensitive: bool = False
    avoid: list[str] = field(default_factory=list)  # the person's words: ingredients or families
    pregnant: bool = False
    preferences: list[str] = field(default_factory=list)
    budget_minor: int | None = None
    currency: str | None = None
    country: str | None = None
    hemisphere: str | None = None

    def add(self, concern: str, origin: Origin, detail: str | None = None) -> None:
        if all(c.concern != concern for c in self.concerns):
            self.concerns.append(NeededConcern(concern, origin, detail))

    def weights(self) -> dict[str, float]:
        return {c.concern: c.weight for c in self.concerns}

    @property
    def main_concern(self) -> str | None:
        ranked = sorted(self.concerns, key=lambda c: -c.weight)
        return ranked[0].concern if ranked else None


def _report_rules() -> dict[str, Any]:
    return dict(
        json.loads(files("shine_mcp.advice").joinpath("data/report_concerns.json").read_text("utf-8"))
    )


REPORT_RULES = _report_rules()


def report_concerns(analysis: dict[str, Any]) -> list[tuple[str, str]]:
    """(concern, what was measured) for each report metric past its conservative cut-off."""
    metrics = {m.get("name"): m for m in analysis.get("metrics") or [] if isinstance(m, dict)}
    found: list[tuple[str, str]] = []
    for rule in REPORT_RULES["rules"]:
        metric = metrics.get(rule["metric"])
        if not metric or metric.get("value") is None:
            continue
        if float(metric.get("confidence") or 0.0) < REPORT_RULES["min_confidence"]:
            continue
        value = float(metric["value"])
        if value >= rule["at_least"]:
            found.append((rule["concern"], rule["says"].format(value=value)))
    return found


def report_skin_type(analysis: dict[str, Any]) -> tuple[str | None, bool]:
    skin = analysis.get("skin_type") or {}
    value = skin.get("value") if isinstance(skin, dict) else None
    sensitive = bool(skin.get("sensitive")) if isinstance(skin, dict) else False
    return (value if value in SKIN_TYPES else None), sensitive
