"""Comparing two analyses: each metric's change against the retake noise of both values, and every
reason the two photos were not taken alike (gates, light, camera colour handling, face size, models).

The noise figures and lighting limits are data with their source: `skin_repeatability.json`.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from shine_mcp.models import Analysis
from shine_mcp.models.report import Metric, MetricName

Verdict = Literal["increased", "decreased", "no_meaningful_change", "not_comparable"]


class MetricChange(BaseModel):
    name: MetricName
    unit: str
    before: float | None
    after: float | None
    change: float | None = Field(description="after minus before; null when either photo withheld the metric")
    uncertainty: float | None = Field(
        description="± range (about 95 %) within which a change is retake noise: two photos taken the same "
        "way differ this much; it grows as either value's confidence drops"
    )
    verdict: Verdict
    note: str | None = Field(description="why the metric cannot be compared, or a category change")


class ComparisonResult(BaseModel):
    changes: list[MetricChange]
    weak: bool = Field(
        description="true when the photos were not taken alike: read the notes before the changes"
    )
    notes: list[str]


@cache
def repeatability() -> dict[str, Any]:
    return dict(json.loads((Path(__file__).parent / "skin_repeatability.json").read_text(encoding="utf-8")))


def uncertainty(metric: Metric) -> float:
    """The standard uncertainty of one reported value, in the metric's unit: the larger of the retake
    noise measured on the calibration portrait and on the outside faces, scaled by confidence."""
    data = repeatability()
    spec = data["metrics"][metric.name]
    confidence = max(metric.confidence, data["min_confidence"])
    at_full_confidence = max(
        spec["rms"] * spec["calibration_confidence"],
        spec.get("real_faces_rms", 0.0) * spec.get("real_faces_confidence", 0.0),
    )
    return float(max(at_full_confidence / confidence, spec.get("floor", 0.0)))


def through_formula(analysis: Analysis, name: MetricName) -> float:
    """ITA's or hue's standard uncertainty carried from the same-photo noise of L*, a* and b* on the
    outside faces through the metric's formula at the measured colour; 0 for other metrics.

    ITA = atan((L* - 50) / b*) and hue = atan(b* / a*) turn steep where the colour is pale in chroma: at
    L* 53, b* 8 one unit of L* moves ITA by 6 degrees, so a flat figure measured on typical faces (1 degree
    per unit) would call a re-compression of the same photo a change (issue 16)."""
    if name not in ("ita", "hue_angle"):
        return 0.0
    lab = [analysis.metric(n) for n in ("lab_l", "lab_a", "lab_b")]
    if any(m.value is None for m in lab):
        return 0.0
    data = repeatability()
    sigma = []
    for m in lab:
        spec = data["metrics"][m.name]
        sigma.append(
            spec["real_faces_rms"] * spec["real_faces_confidence"] / max(m.confidence, data["min_confidence"])
        )
    light, red, yellow = (float(m.value or 0.0) for m in lab)
    if name == "ita":
        rise, run, (s_rise, s_run) = light - 50.0, yellow, (sigma[0], sigma[2])
    else:
        rise, run, (s_rise, s_run) = yellow, red, (sigma[2], sigma[1])
    squared = rise * rise + run * run
    if squared < 1e-6:
        return 0.0
    return math.degrees(math.hypot(run * s_rise, rise * s_run) / squared)


def _withheld_why(metric: Metric, which: str) -> str:
    if metric.limited_by:
        return f"withheld in the {which} photo ({', '.join(metric.limited_by)})"
    return f"withheld in the {which} photo (too little clear skin)"


def metric_change(before: Metric, after: Metric, least: tuple[float, float] = (0.0, 0.0)) -> MetricChange:
    """`least`: each value's uncertainty is at least this (see `through_formula`)."""
    if before.value is None or after.value is None:
        reasons = [_withheld_why(m, w) for m, w in ((before, "before"), (after, "after")) if m.value is None]
        return MetricChange(
            name=before.name,
            unit=before.unit,
            before=before.value,
            after=after.value,
            change=None,
            uncertainty=None,
            verdict="not_comparable",
            note="; ".join(reasons),
        )
    change = after.value - before.value
    k = repeatability()["coverage_factor"]
    band = k * math.hypot(max(uncertainty(before), least[0]), max(uncertainty(after), least[1]))
    verdict: Verdict = "no_meaningful_change"
    if abs(change) > band:
        verdict = "increased" if change > 0 else "decreased"
    note = None
    was, now = before.details.get("category"), after.details.get("category")
    if was is not None and now is not None and was != now:
        note = f"category {was} -> {now}"
    return MetricChange(
        name=before.name,
        unit=before.unit,
        before=before.value,
        after=after.value,
        change=round(change, 2),
        uncertainty=round(band, 2),
        verdict=verdict,
        note=note,
    )


def differences(before: Analysis, after: Analysis) -> list[str]:
    """Everything that makes the two photos unlike each other, as sentences; empty when alike."""
    limits = repeatability()["lighting"]
    notes: list[str] = []
    for b in before.gates:
        a = after.gate(b.name)
        if a.passed != b.passed:
            failed_in = "after" if b.passed else "before"
            blocks = ", ".join(b.blocks)
            notes.append(
                f"the {b.name} check failed in the {failed_in} photo only, so {blocks} cannot be compared"
            )
    light_b, light_a = before.metric("lab_l").value, after.metric("lab_l").value
    if light_b is not None and light_a is not None and abs(light_a - light_b) > limits["brightness_l_star"]:
        notes.append(
            f"the light differs: the face's lightness is L* {light_b:.0f} before and {light_a:.0f} "
            "after; apparent colour and shine follow the light, so take both photos in the same place and light"
        )
    side_b, side_a = before.gate("uneven_lighting").measured, after.gate("uneven_lighting").measured
    if abs(side_a - side_b) > limits["uneven_lighting_l_star"]:
        notes.append(
            f"the light falls differently: the cheeks differ by L* {side_b:.0f} before and {side_a:.0f} after; "
            "face the light the same way in both photos"
        )
    if before.image.icc != after.image.icc:
        notes.append(
            "the photos' colour handling differs (one has a colour profile, the other was assumed sRGB): "
            "likely different cameras or apps, which shifts apparent colour"
        )
    width_b, width_a = before.face.box.width, after.face.box.width
    if max(width_a, width_b) > limits["face_width_ratio"] * min(width_a, width_b):
        notes.append(
            f"the face is {width_b:.0f} px wide before and {width_a:.0f} px after: texture and spot counts "
            "depend on the photo's detail, so hold the camera at the same distance"
        )
    models_b = {m.name: m.sha256 for m in before.models}
    models_a = {m.name: m.sha256 for m in after.models}
    if models_b != models_a:
        changed = sorted(n for n in set(models_b) | set(models_a) if models_b.get(n) != models_a.get(n))
        notes.append(
            f"the analysis models changed between the reports ({', '.join(changed)}): differences may come "
            "from the models, not the skin"
        )
    return notes


def compare(before: Analysis, after: Analysis) -> ComparisonResult:
    changes = [
        metric_change(
            b, after.metric(b.name), (through_formula(before, b.name), through_formula(after, b.name))
        )
        for b in before.metrics
    ]
    notes = differences(before, after)
    return ComparisonResult(changes=changes, weak=bool(notes), notes=notes)
