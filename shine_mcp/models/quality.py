"""Quality gates: measure what limits a photo, and say which metrics each limit withholds and why."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from .colour import (
    D65_WHITE,
    LAB_EPSILON,
    LAB_OFFSET,
    LAB_SLOPE,
    SRGB_TO_XYZ,
    srgb_to_linear,
)
from .face import Face
from .illuminant import NO_REFERENCE, Illuminant
from .measure import Measurements
from .regions import CROP_SIZE, EYE_CENTRE, EYE_DISTANCE, REGIONS, FaceCrop
from .report import Gate

SKIN_REGIONS = ("forehead", "right_cheek", "left_cheek", "chin")
# Anthropometric proportions used to turn keypoint offsets into an approximate yaw angle: half the
# bitragion breadth over the tragion-to-nose-tip depth (~7.2 cm / ~11 cm), and the nose tip's depth
# in front of the eyes over the interpupillary distance (~2.5 cm / ~6.3 cm).
EAR_WIDTH_OVER_DEPTH = 0.65
NOSE_DEPTH_OVER_EYES = 0.4
FRAME_SAMPLE_SIDE = 160  # px: the exposure of the frame needs no detail
# CIELAB hue of skin under daylight is ~40-70 degrees for most people (Xiao 2017; Del Bino 2006); a
# residual white-balance error of a camera moves it by up to ~15: outside this the light decides. A
# range to 100 (for the Monk 3-4 swatches at 89) let a third more blue-lit faces through; near-grey skin
# is kept inside by HUE_NOISE_AB instead.
SKIN_HUE_RANGE = (25.0, 90.0)
# a*b* units: a colour this close to the hue range is inside it within noise (a few JPEG levels move a
# near-grey cheek's hue by tens of degrees but its a*, b* by about one unit; Monk 1-2 and 9-10 have
# C* 4-8, Monk 3-4 sit at hue 89 with C* 14-18)
HUE_NOISE_AB = 1.0
MIN_REGION_PIXELS = 60
FLAT_SPREAD_L = 1.0  # L* between the 10th and 90th percentile: real skin always shades more than this
CLIPPED_L = 98.0  # blown-out pixels are flat too; the clipping gate speaks for them
OUTLIER_DELTA_E = 22.0  # a region this far from the nearest other region is covered, not skin
OUTLIER_WEIGHTS = np.array([0.5, 1.0, 1.0])  # lightness varies with the face's relief; colour less so
# Where the sharpness gate looks, in eye distances from the keypoints: each eye with its brow (half
# width, above, below) and the lips (half width, half height). Skin grain is not focus (issue 16).
FEATURE_EYE = (0.3, 0.45, 0.2)
FEATURE_LIPS = (0.4, 0.15)
FEATURE_MIN_CONTRAST = 8.0  # L*: a window flatter than this shows no edge to judge focus by
# A drawing, not a photo: skin in a photo always varies from pixel to pixel (pores, shading, sensor
# noise, JPEG); a drawn face is filled flat. Share of unclipped skin-region pixels whose 3 x 3
# neighbourhood varies by less than FLAT_PIXEL_SD L*: the faces of the validation set measure 0.0-0.36
# (0.53 on Monk 1 recolours, whose brightest skin has clipped), drawn and line-art faces 0.6-0.99.
FLAT_PIXEL_SD = 0.15
DRAWING_FLAT_SHARE = 0.58
# A region this much of flat pixels is covered in part (a card, a plaster): regions of the validation
# faces measure at most 0.54, a white card or a flat skin-coloured patch over a cheek 0.35-1.0.
COVERED_FLAT_SHARE = 0.6


@dataclass(frozen=True)
class GateSpec:
    name: str
    threshold: float
    comparison: str
    unit: str
    blocks: tuple[str, ...]
    advice: str
    why: str


@cache
def gate_specs() -> dict[str, GateSpec]:
    data = json.loads((Path(__file__).parent / "gates.json").read_text(encoding="utf-8"))
    return {
        g["name"]: GateSpec(
            g["name"],
            float(g["threshold"]),
            g["comparison"],
            g["unit"],
            tuple(g["blocks"]),
            g["advice"],
            g["why"],
        )
        for g in data["gates"]
    }


def head_pose(crop: FaceCrop) -> tuple[float, float]:
    """(roll, yaw) in degrees; yaw averages an ear-based and a nose-based estimate, both rough."""
    k = crop.keypoints
    nose_x = k["nose_tip"][0]
    to_right_ear = nose_x - k["right_ear_tragion"][0]
    to_left_ear = k["left_ear_tragion"][0] - nose_x
    spread = max(to_right_ear + to_left_ear, 1e-6)
    ear_yaw = math.degrees(math.atan((to_right_ear - to_left_ear) / spread * EAR_WIDTH_OVER_DEPTH))
    nose_yaw = math.degrees(math.atan((nose_x - EYE_CENTRE[0]) / EYE_DISTANCE / NOSE_DEPTH_OVER_EYES))
    return crop.roll_deg, (ear_yaw + nose_yaw) / 2


def sharpness(m: Measurements) -> float:
    """Variance of the Laplacian of L* over skin whose neighbourhood is all skin (edges excluded).

    Skin grain, not focus: sensor noise raises it and smooth skin lowers it. Kept for the record; the
    sharpness gate measures `edge_width` instead."""
    s = m.combined(SKIN_REGIONS)
    if s["fine"] < 50:
        return 0.0
    mean = s["sum_lap"] / s["fine"]
    return max(0.0, s["sum_lap2"] / s["fine"] - mean * mean)


def _focus_points(crop: FaceCrop) -> tuple[dict[str, tuple[float, float]], float]:
    """The keypoints the sharpness windows are placed from, and their eye distance in crop pixels: the
    whole-frame pass's, which the 6.5 px limit was calibrated on (`face.refine`)."""
    points = crop.focus_keypoints or crop.keypoints
    (rx, ry), (lx, ly) = points["right_eye"], points["left_eye"]
    return points, max(float(np.hypot(lx - rx, ly - ry)), 1.0)


def _feature_windows(crop: FaceCrop) -> list[tuple[float, float, float, float]]:
    """(left, top, right, bottom) around each eye with its brow, and around the lips, in crop pixels."""
    points, d = _focus_points(crop)
    windows = []
    for name in ("right_eye", "left_eye"):
        x, y = points[name]
        windows.append(
            (x - FEATURE_EYE[0] * d, y - FEATURE_EYE[1] * d, x + FEATURE_EYE[0] * d, y + FEATURE_EYE[2] * d)
        )
    x, y = points["mouth_center"]
    windows.append(
        (x - FEATURE_LIPS[0] * d, y - FEATURE_LIPS[1] * d, x + FEATURE_LIPS[0] * d, y + FEATURE_LIPS[1] * d)
    )
    return windows


def edge_width(crop: FaceCrop, m: Measurements) -> float:
    """How wide the edges every face has (eyelids, irises, brows, lips) are, in crop pixels: the
    window's L* contrast over its steepest slope, the median over the windows that have contrast.

    A Gaussian blur of sigma s widens it by about 2.5 s; sensor noise and smooth or retouched skin barely
    move it (the slope is taken on a 3 x 3 mean, and only the steepest 1 % counts), so it measures
    focus and motion blur rather than skin grain. No contrast anywhere (eyes and lips hidden) gives
    CROP_SIZE: nothing shows that the photo is in focus."""
    lum = m.lab[..., 0].astype(np.float64)
    mean = _neighbourhood_mean(_neighbours(lum))
    gx, gy = np.zeros_like(mean), np.zeros_like(mean)
    gx[:, 1:-1] = (mean[:, 2:] - mean[:, :-2]) / 2
    gy[1:-1] = (mean[2:] - mean[:-2]) / 2
    inside = crop.inside[1:-1, 1:-1]
    widths = []
    for left, top, right, bottom in _feature_windows(crop):
        # `mean` is offset by one pixel from the crop
        x0, y0 = max(0, round(left) - 1), max(0, round(top) - 1)
        x1, y1 = min(mean.shape[1], round(right) - 1), min(mean.shape[0], round(bottom) - 1)
        if x1 <= x0 or y1 <= y0:
            continue
        keep = inside[y0:y1, x0:x1]
        if keep.sum() < MIN_REGION_PIXELS:
            continue
        # the slope only where it is looked at: np.hypot over the whole crop cost a millisecond
        window, steep = mean[y0:y1, x0:x1][keep], np.hypot(gx[y0:y1, x0:x1], gy[y0:y1, x0:x1])[keep]
        darkest, brightest = np.percentile(window, (5, 95))
        contrast = float(brightest - darkest)
        if contrast < FEATURE_MIN_CONTRAST:
            continue
        widths.append(contrast / max(float(np.percentile(steep, 99)), 1e-6))
    # in the units of a crop whose eyes are EYE_DISTANCE apart by the focus keypoints, as calibrated
    return float(np.median(widths)) * EYE_DISTANCE / _focus_points(crop)[1] if widths else float(CROP_SIZE)


_LINEAR_CODES = np.asarray(srgb_to_linear(np.arange(256) / 255.0))  # uint8 sRGB code -> linear light


def frame_bright_end(image: Image.Image) -> float:
    """L* of the brightest 5 % of the whole photo, on a small copy (it only needs the exposure).

    L* rises with luminance alone, so the 95th percentile (linear between the two nearest pixels, as
    `np.percentile`) is found on luminance and only those two pixels are converted to L*: the same value
    as converting the whole copy to CIELAB, for a tenth of the work."""
    factor = max(1, max(image.size) // FRAME_SAMPLE_SIDE)
    small = image.reduce(factor) if factor > 1 else image
    codes = np.asarray(small if small.mode == "RGB" else small.convert("RGB"))
    luminance = (_LINEAR_CODES[codes] @ SRGB_TO_XYZ[1] / D65_WHITE[1]).ravel()
    position = 0.95 * (luminance.size - 1)
    low = math.floor(position)
    high = min(low + 1, luminance.size - 1)
    darker, brighter = _lightness(np.partition(luminance, (low, high))[[low, high]])
    return float(darker + (position - low) * (brighter - darker))


def _lightness(luminance: np.ndarray) -> np.ndarray:
    """CIE L* of relative luminance Y (D65 white = 1), as `colour.linear_to_lab` computes it."""
    f = np.where(luminance > LAB_EPSILON, np.cbrt(luminance), luminance * LAB_SLOPE + LAB_OFFSET)
    return np.asarray(116.0 * f - 16.0)


def exposure(frame_bright: float, crop: FaceCrop, m: Measurements) -> float:
    """How exposed the photo is, judged from the frame and the face's brightest parts (the whites of the
    eyes, teeth, highlights), never from the skin's own lightness: dark skin in good light passes."""
    inside = m.lab[..., 0][crop.inside]
    face_bright = float(np.percentile(inside, 98)) if inside.size else 0.0
    return max(frame_bright, face_bright)


def skin_hue_inside(m: Measurements) -> float:
    """Degrees by which the cheeks' hue sits inside the range of skin under plausible light (negative:
    outside it). Greyscale cheeks have no hue to judge: the colour gate withholds them instead."""
    _, a, b, chroma = m.reference
    if chroma < gate_specs()["colour"].threshold:
        return SKIN_HUE_RANGE[1] - SKIN_HUE_RANGE[0]
    hue = math.degrees(math.atan2(b, a))
    inside = min(hue - SKIN_HUE_RANGE[0], SKIN_HUE_RANGE[1] - hue)
    near = chroma * math.sin(math.radians(min(-inside, 90.0))) < HUE_NOISE_AB
    if inside < 0.0 and near and b > 0.0:  # skin of every tone is yellower than grey (b* > 0)
        return 0.0  # near-grey skin (Monk 1-2, 9-10): its hue swings with noise, its colour does not
    return inside


def flat_pixels(m: Measurements) -> np.ndarray:
    """bool [H, W]: pixels whose 3 x 3 neighbourhood varies by less than FLAT_PIXEL_SD L* (the crop's
    border, which has no full neighbourhood, is never flat)."""
    shifted = _neighbours(m.lab[..., 0].astype(np.float64))
    mean = _neighbourhood_mean(shifted)
    squares = np.zeros_like(mean)
    for view in shifted:  # np.std over the nine, in its order of operations, without stacking them
        deviation = view - mean
        deviation *= deviation
        squares += deviation
    flat = np.zeros(m.lab.shape[:2], dtype=bool)
    flat[1:-1, 1:-1] = np.sqrt(squares / len(shifted)) < FLAT_PIXEL_SD
    return flat


def _neighbours(lum: np.ndarray) -> list[np.ndarray]:
    """The nine pixels of every interior pixel's 3 x 3 neighbourhood, as nine views of `lum` (no copies)."""
    height, width = lum.shape
    return [lum[dy : height - 2 + dy, dx : width - 2 + dx] for dy in range(3) for dx in range(3)]


def _neighbourhood_mean(shifted: list[np.ndarray]) -> np.ndarray:
    """Mean of the views, summed in order: the same floats as `np.mean(np.stack(shifted), axis=0)`, which
    sums along the stacked axis in that order too, without first copying them into one array (which made
    the flat-pixel measure six times slower)."""
    total = shifted[0] + shifted[1]
    for view in shifted[2:]:
        total += view
    return np.asarray(total / len(shifted))


def covered_regions(m: Measurements, masks: np.ndarray, flat: np.ndarray | None = None) -> list[str]:
    """Skin regions that measure a cover rather than skin: a flat uniform patch (paper, a plaster, a
    sticker: skin always has shading and texture), a region mostly of flat pixels (a cover over part of
    it, whose edge with the skin hides it from the spread), or a colour far from every other region's.
    `flat` is `flat_pixels(m)` when the caller has it already."""
    lab = m.lab
    flat = flat_pixels(m) if flat is None else flat
    index = {name: i for i, name in enumerate(REGIONS)}
    stats: dict[str, tuple[np.ndarray, float]] = {}
    for name in SKIN_REGIONS:
        pixels = lab[masks[index[name]] > 0.5]
        pixels = pixels[pixels[:, 0] < CLIPPED_L]
        if len(pixels) < MIN_REGION_PIXELS:
            continue
        darker, lighter = np.percentile(pixels[:, 0], (10, 90))
        spread = float(lighter - darker)
        stats[name] = (np.median(pixels, axis=0), spread)
    covered = [name for name, (_, spread) in stats.items() if spread < FLAT_SPREAD_L]
    for name in SKIN_REGIONS:
        region = masks[index[name]] > 0.5
        enough = name not in covered and region.sum() >= MIN_REGION_PIXELS
        if enough and float(flat[region].mean()) >= COVERED_FLAT_SHARE:
            covered.append(name)
    for name, (colour, _) in stats.items():
        others = [c for other, (c, _) in stats.items() if other != name and other not in covered]
        if len(others) < 2:
            continue
        distances = sorted(float(np.linalg.norm((colour - c) * OUTLIER_WEIGHTS)) for c in others)
        if distances[0] > OUTLIER_DELTA_E and name not in covered:
            covered.append(name)
    return covered


def flat_share(m: Measurements, masks: np.ndarray, flat: np.ndarray | None = None) -> float:
    """Share of the forehead, cheek and chin pixels (unclipped) whose 3 x 3 neighbourhood is flat: near
    0 on photographed skin, most of the face on a drawing."""
    flat = flat_pixels(m) if flat is None else flat
    index = [REGIONS.index(name) for name in SKIN_REGIONS]
    skin = (masks[index].max(axis=0) > 0.5) & (m.lab[..., 0] < CLIPPED_L)
    skin[[0, -1], :] = False
    skin[:, [0, -1]] = False
    return float(flat[skin].mean()) if skin.sum() >= MIN_REGION_PIXELS else 0.0


def is_drawing(m: Measurements, masks: np.ndarray, flat: np.ndarray | None = None) -> bool:
    return flat_share(m, masks, flat) >= DRAWING_FLAT_SHARE


def cheek_difference(m: Measurements) -> float:
    right, left = m.regions["right_cheek"].mean("sum_l"), m.regions["left_cheek"].mean("sum_l")
    if right is None or left is None:
        return 0.0
    return abs(right - left)


def evaluate_gates(
    original_size: tuple[int, int],
    face: Face,
    crop: FaceCrop,
    m: Measurements,
    masks: np.ndarray,
    frame_bright: float,
    light: Illuminant = NO_REFERENCE,
    flat: np.ndarray | None = None,
) -> list[Gate]:
    """Every gate, passed or not, with its measured value: the report shows all of them. `flat` is
    `flat_pixels(m)` when the caller has it already (the drawing check needs it first)."""
    roll, yaw = head_pose(crop)
    skin = m.combined(SKIN_REGIONS)
    measured = {
        "resolution": float(min(original_size)),
        "face_size": face.box[2],
        "sharpness": edge_width(crop, m),
        "clipping": 100.0 * skin.fraction("clipped"),
        "brightness": exposure(frame_bright, crop, m),
        "colour": m.reference[3],
        "uneven_lighting": cheek_difference(m),
        "head_roll": abs(roll),
        "head_yaw": abs(yaw),
        "skin_colour": skin_hue_inside(m),
        "occlusion": float(len(covered_regions(m, masks, flat))),
        "light": light.correctable_margin,
    }
    gates = []
    for name, spec in gate_specs().items():
        value = measured[name]
        passed = value >= spec.threshold if spec.comparison == ">=" else value <= spec.threshold
        gates.append(
            Gate.model_validate(
                {
                    "name": name,
                    "passed": passed,
                    "measured": round(value, 3),
                    "threshold": spec.threshold,
                    "comparison": spec.comparison,
                    "unit": spec.unit,
                    "blocks": list(spec.blocks),
                    "advice": None if passed else spec.advice,
                }
            )
        )
    return gates


def margin(gate: Gate, soft_band: float) -> float:
    """0-1: how comfortably a passed gate passed; used to lower confidence near a threshold."""
    if not gate.passed:
        return 0.0
    if soft_band <= 0.0:
        return 1.0
    distance = gate.measured - gate.threshold if gate.comparison == ">=" else gate.threshold - gate.measured
    return min(1.0, max(0.0, distance / soft_band))
