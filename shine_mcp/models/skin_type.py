"""Skin type from a short questionnaire, with the photo's shine pattern as supporting evidence."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .report import Metric, SkinType


class Answers(BaseModel):
    """The questionnaire. Every answer is optional; the more are given, the more the result rests on."""

    model_config = ConfigDict(extra="forbid")

    oiliness_by_midday: Literal["none", "t_zone", "all_over"] | None = Field(
        None, description="where the face looks or feels oily by midday without touch-ups"
    )
    tightness_after_washing: Literal["none", "some", "strong"] | None = Field(
        None, description="how tight the skin feels 30 minutes after washing with nothing applied"
    )
    reactions_to_products: Literal["never", "sometimes", "often"] | None = Field(
        None, description="stinging, burning or redness after skincare products"
    )
    breakouts: Literal["rarely", "sometimes", "often"] | None = Field(
        None, description="how often breakouts appear"
    )


@cache
def rules() -> dict[str, Any]:
    return dict(json.loads((Path(__file__).parent / "skin_type_rules.json").read_text(encoding="utf-8")))


def infer_skin_type(answers: Answers | None, shine: Metric | None) -> SkinType:
    """Answers decide; the photo fills in oiliness only when it was not answered, and a disagreement
    is stated rather than hidden (one photo shows one moment, an answer covers a day)."""
    r = rules()
    answers = answers or Answers()
    evidence: list[str] = []
    notes: list[str] = []
    photo_oil = None
    if shine is not None and shine.value is not None:
        pattern = str(shine.details.get("pattern"))
        photo_oil = r["oil_from_photo"][pattern]
        evidence_photo = (
            f"photo: shine pattern '{pattern}' (T-zone {shine.details.get('t_zone_percent')} %, "
            f"cheeks {shine.details.get('cheeks_percent')} %)"
        )
    oil = "unknown"
    if answers.oiliness_by_midday is not None:
        oil = r["oil_from_answer"][answers.oiliness_by_midday]
        evidence.append(f"answer: oiliness_by_midday={answers.oiliness_by_midday}")
        if photo_oil is not None:
            evidence.append(evidence_photo)
            if photo_oil != oil:
                notes.append("the photo's shine pattern differs from your answer; the answer was used")
    elif photo_oil is not None:
        oil = photo_oil
        evidence.append(evidence_photo)
        notes.append("oiliness taken from the photo alone; shine depends on the light and time since washing")
    tight = answers.tightness_after_washing or "unknown"
    if answers.tightness_after_washing is not None:
        evidence.append(f"answer: tightness_after_washing={tight}")
    value = r["type_by_oil_and_tightness"][oil][tight]
    sensitive = None
    if answers.reactions_to_products is not None:
        sensitive = r["sensitive_by_reactions"][answers.reactions_to_products]
        evidence.append(f"answer: reactions_to_products={answers.reactions_to_products}")
    if answers.breakouts is not None:
        evidence.append(f"answer: breakouts={answers.breakouts} (noted, not used to type skin)")
    if value is None:
        explanation = "not enough evidence: answer oiliness_by_midday and tightness_after_washing"
    else:
        explanation = f"{value} skin" + (", sensitive" if sensitive else "")
        if notes:
            explanation += " (" + "; ".join(notes) + ")"
    return SkinType(value=value, sensitive=sensitive, evidence=evidence, explanation=explanation)
