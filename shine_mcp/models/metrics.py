"""Turns measurements and gates into reported metrics, each with its confidence and what limited it."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

from .colour import classify_ita, hue_angle, ita, ita_under_lighting
from .illuminant import NO_REFERENCE, Illuminant, kelvin_hint
from .measure import Measurements, RegionStats
from .quality import margin
from .report import Gate, Metric, MetricName, RegionName

COLOUR_REGIONS: tuple[RegionName, ...] = ("forehead", "right_cheek", "left_cheek", "chin")
CHEEKS: tuple[RegionName, ...] = ("right_cheek", "left_cheek")
T_ZONE: tuple[RegionName, ...] = ("forehead", "nose")
MIN_COLOUR_PIXELS = 300  # ~5 % of the crop's skin; fewer and a few stray pixels decide the mean
MIN_FINE_PIXELS = 300
MIN_REFERENCE_PIXELS = 120
# Colour from a photo without a colour reference (grey card, white paper) in the frame: the camera's
# exposure and white balance are unknown, so apparent colour is never reported as certain.
NO_REFERENCE_CONFIDENCE = 0.5
# With the whites of the eyes as a reference, ITA is corrected for the light's colour and its range
# narrows, but the confidence stays capped as without one: the exposure stays unknown, the sclera's own
# colour varies from person to person, and whether it can be told from the skin depends on the skin's
# colour (near-grey skin, Monk 1-2 and 9-10, hides it), so a reference must not make one tone's reports
# more confident than another's (issue 16: confidence within 5 points across Monk groups).
REFERENCE_CONFIDENCE = NO_REFERENCE_CONFIDENCE
# How far a phone's automatic exposure and white balance are commonly off on faces: +-25 % exposure,
# +-15 % red/blue gain (about +-1000 K near daylight: 7500 K vs 6500 K is +25 % blue, -5 % red). ITA is reported as the range this allows.
EXPOSURE_UNCERTAINTY = (0.8, 1.25)
WHITE_BALANCE_UNCERTAINTY = 0.15
COLOUR_METRICS: tuple[MetricName, ...] = ("lab_l", "lab_a", "lab_b", "hue_angle", "ita")
# A region counts as shiny above this specular share. 5 % is five times the shine's same-photo retake
# noise on the outside faces (RMS 0.98 pp over re-crops, mirrors, tilts and re-compressions), so the
# pattern, which can type skin when oiliness is not answered, does not flip on a re-crop; at 2 % three of
# the eight outside faces whose shine is reported sat at 2.0-2.6 %, inside that noise.
SHINY_PERCENT = 5.0
# how far past a threshold a gate must be before it stops lowering confidence, in the gate's unit
SOFT_BANDS = {
    "resolution": 240.0,
    "face_size": 80.0,
    "sharpness": 1.5,
    "clipping": 3.0,
    "brightness": 10.0,
    # The colour and skin_colour gates measure the skin's own chroma and hue: they withhold implausible
    # colour, but a margin on them would lower confidence for the palest and darkest tones (Monk 1-3
    # sit near hue 90, Monk 10 near chroma 4), which says nothing about how well the photo was taken.
    "colour": 0.0,
    "uneven_lighting": 5.0,
    "head_roll": 10.0,
    "head_yaw": 10.0,
    "skin_colour": 0.0,
    "occlusion": 0.0,  # a count: a covered region withholds; none covered lowers nothing
    "light": 0.0,  # found or not, the reference decides the ITA range, not a soft margin
}


@cache
def definitions() -> dict[str, dict[str, str]]:
    data = json.loads((Path(__file__).parent / "metrics.json").read_text(encoding="utf-8"))
    return dict(data["metrics"])


def coverage(pixels: float, needed: float) -> float:
    return min(1.0, pixels / needed)


def _metric(
    name: MetricName,
    value: float | None,
    gates: list[Gate],
    regions: tuple[RegionName, ...],
    base_confidence: float,
    details: dict[str, float | int | str] | None = None,
    note: str = "",
    colour_cap: float = NO_REFERENCE_CONFIDENCE,
) -> Metric:
    blocking = [g for g in gates if name in g.blocks]
    limited = [g.name for g in blocking if not g.passed]
    confidence = base_confidence
    if name in COLOUR_METRICS:
        confidence = min(confidence, colour_cap)
    for gate in blocking:
        confidence *= 0.6 + 0.4 * margin(gate, SOFT_BANDS[gate.name]) if gate.passed else 0.0
    withheld = bool(limited) or value is None
    definition = definitions()[name]
    return Metric(
        name=name,
        value=None if withheld else round(float(value or 0.0), 2),
        unit=definition["unit"],
        confidence=0.0 if withheld else round(max(0.0, min(1.0, confidence)), 2),
        regions_used=list(regions),
        limited_by=limited,
        explanation=definition["explanation"] + (f"; {note}" if note else ""),
        details={} if withheld else dict(details or {}),
    )


def skin_lab(m: Measurements) -> tuple[float, float, float] | None:
    """Mean CIELAB of the forehead, cheek and chin skin (neither clipped, shiny nor shadowed)."""
    used = tuple(r for r in COLOUR_REGIONS if m.regions[r]["valid"] >= 30)
    stats = m.combined(used) if used else None
    if stats is None or stats["valid"] < MIN_COLOUR_PIXELS:
        return None
    lab = (stats.mean("sum_l"), stats.mean("sum_a"), stats.mean("sum_b"))
    if lab[0] is None or lab[1] is None or lab[2] is None:
        return None
    return lab[0], lab[1], lab[2]


def colour_metrics(m: Measurements, gates: list[Gate], light: Illuminant = NO_REFERENCE) -> list[Metric]:
    used = tuple(r for r in COLOUR_REGIONS if m.regions[r]["valid"] >= 30)
    stats = m.combined(used) if used else None
    enough = stats is not None and stats["valid"] >= MIN_COLOUR_PIXELS
    lab = (
        (stats.mean("sum_l"), stats.mean("sum_a"), stats.mean("sum_b"))
        if enough and stats
        else (None, None, None)
    )
    base = coverage(stats["valid"], 2000.0) if stats else 0.0
    metrics = [
        _metric("lab_l", lab[0], gates, used, base),
        _metric("lab_a", lab[1], gates, used, base),
        _metric("lab_b", lab[2], gates, used, base),
    ]
    if lab[0] is None or lab[1] is None or lab[2] is None:
        return [
            *metrics,
            _metric("hue_angle", None, gates, used, 0.0),
            _metric("ita", None, gates, used, 0.0),
        ]
    apparent = (lab[0], lab[1], lab[2])
    corrected = light.correct(apparent) if light.found else apparent
    if light.pixels_corrected:  # measured on pixels already corrected for the light (a held card)
        apparent, corrected = light.cast(apparent), apparent
    angle = ita(corrected[0], corrected[2])
    balance = light.balance_uncertainty if light.found else WHITE_BALANCE_UNCERTAINTY
    low, high = ita_under_lighting(corrected, EXPOSURE_UNCERTAINTY, balance)
    cls = classify_ita(angle)
    lighter, darker = classify_ita(high).category, classify_ita(low).category
    details: dict[str, float | int | str] = {
        "ita_low": round(low, 2),
        "ita_high": round(high, 2),
        "nearest_boundary_deg": cls.nearest_boundary_deg,
        "distance_to_boundary_deg": round(cls.distance_to_boundary_deg, 2),
    }
    if light.found:
        details |= {
            "colour_reference": light.described,
            "light": kelvin_hint(light.gains),
            "apparent_ita": round(ita(apparent[0], apparent[2]), 2),
            "light_gain_red": round(light.gains[0], 4),
            "light_gain_blue": round(light.gains[2], 4),
            "lighting_uncertainty": f"corrected for the light's colour seen on {light.described}; "
            f"exposure -20 % to +25 %, white balance +-{round(100 * light.balance_uncertainty)} % red/blue",
        }
    else:
        details |= {
            "colour_reference": "none",
            "lighting_uncertainty": "exposure -20 % to +25 %, white balance +-15 % red/blue, about +-1000 K "
            "(no colour reference in the photo)",
            "narrower_range": "hold a sheet of plain white paper beside your face, in the same light, and "
            "take the photo again: the paper shows the colour of the light, which narrows this range (looking "
            "at the camera with your eyes open in even light helps too)",
        }
    if lighter == darker:
        details["category"] = cls.category
    else:
        details["category_range"] = f"{lighter} to {darker}"
    return [
        *metrics,
        _metric("hue_angle", hue_angle(lab[1], lab[2]), gates, used, base),
        _metric(
            "ita",
            angle,
            gates,
            used,
            base,
            details,
            colour_cap=REFERENCE_CONFIDENCE if light.found else NO_REFERENCE_CONFIDENCE,
        ),
    ]


def redness(m: Measurements, gates: list[Gate]) -> Metric:
    cheeks = m.combined(CHEEKS)
    reference_region: RegionName = "forehead"
    if m.regions["forehead"]["valid"] < MIN_REFERENCE_PIXELS:
        reference_region = "chin"  # forehead covered by hair, a hat or a fringe
    reference = m.regions[reference_region]
    cheek_a, ref_a = cheeks.mean("sum_a"), reference.mean("sum_a")
    value = None
    if cheek_a is not None and ref_a is not None and reference["valid"] >= MIN_REFERENCE_PIXELS:
        value = cheek_a - ref_a
    base = coverage(min(cheeks["valid"], reference["valid"]), 400.0)
    note = "" if reference_region == "forehead" else "forehead covered, so compared with the chin"
    return _metric(
        "redness",
        value,
        gates,
        (*CHEEKS, reference_region),
        base,
        {"reference_region": reference_region},
        note,
    )


def specular_percent(s: RegionStats) -> tuple[float, float]:
    """(percent, pixels looked at): highlights over skin, blown-out highlights included."""
    looked_at = s["shine_base"]
    return (100.0 * s["specular"] / looked_at if looked_at > 0 else 0.0), looked_at


def shine(m: Measurements, gates: list[Gate]) -> Metric:
    t_zone, t_pixels = specular_percent(m.combined(T_ZONE))
    cheeks, c_pixels = specular_percent(m.combined(CHEEKS))
    if t_zone >= SHINY_PERCENT and cheeks >= SHINY_PERCENT:
        pattern = "all_over"
    elif t_zone >= SHINY_PERCENT:
        pattern = "t_zone"
    elif cheeks >= SHINY_PERCENT:
        pattern = "cheeks"
    else:
        pattern = "little"
    value = t_zone if min(t_pixels, c_pixels) >= MIN_REFERENCE_PIXELS else None
    details: dict[str, float | int | str] = {
        "t_zone_percent": round(t_zone, 2),
        "cheeks_percent": round(cheeks, 2),
        "pattern": pattern,
    }
    return _metric(
        "shine", value, gates, (*T_ZONE, *CHEEKS), coverage(min(t_pixels, c_pixels), 600.0), details
    )


def fine_scale(m: Measurements, gates: list[Gate]) -> list[Metric]:
    tone_regions: tuple[RegionName, ...] = COLOUR_REGIONS
    s = m.combined(tone_regions)
    enough = s["fine"] >= MIN_FINE_PIXELS
    tone = None
    if enough:
        mean = s["sum_mid"] / s["fine"]
        tone = math.sqrt(max(0.0, s["sum_mid2"] / s["fine"] - mean * mean))
    texture_regions: tuple[RegionName, ...] = ("forehead", *CHEEKS)
    t = m.combined(texture_regions)
    texture = math.sqrt(t["sum_hf2"] / t["fine"]) if t["fine"] >= MIN_FINE_PIXELS else None
    spot_regions: tuple[RegionName, ...] = ("forehead", *CHEEKS, "nose", "chin")
    per_region: dict[str, float | int | str] = {r: int(m.regions[r]["spots"]) for r in spot_regions}
    spots = float(sum(int(v) for v in per_region.values())) if enough else None
    base = coverage(s["fine"], 1500.0)
    return [
        _metric("tone_unevenness", tone, gates, tone_regions, base),
        _metric("texture", texture, gates, texture_regions, coverage(t["fine"], 1200.0)),
        _metric("dark_spots", spots, gates, spot_regions, base, per_region),
    ]


def all_metrics(m: Measurements, gates: list[Gate], light: Illuminant = NO_REFERENCE) -> list[Metric]:
    return [*colour_metrics(m, gates, light), redness(m, gates), shine(m, gates), *fine_scale(m, gates)]
