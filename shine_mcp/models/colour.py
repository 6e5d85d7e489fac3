"""Reference colour maths in numpy: sRGB -> linear -> XYZ (D65) -> CIELAB, hue, ITA and its categories.

The ONNX metrics graph repeats the same formulas on whole images; tests hold the two together.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

# IEC 61966-2-1:1999 (sRGB): linear RGB -> XYZ, D65 white, and the D65 white point it implies.
SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
D65_WHITE = SRGB_TO_XYZ.sum(axis=1)  # (0.95047, 1.0, 1.08883): the white of sRGB itself
LAB_EPSILON = (6.0 / 29.0) ** 3  # CIE 15:2004 piecewise boundary of f(t)
LAB_SLOPE = 1.0 / (3.0 * (6.0 / 29.0) ** 2)
LAB_OFFSET = 4.0 / 29.0


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB values in [0, 1] to linear light (the IEC 61966-2-1 transfer function)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1], shape (..., 3) -> CIELAB (..., 3) relative to D65."""
    return linear_to_lab(srgb_to_linear(rgb))


def linear_to_lab(linear: np.ndarray) -> np.ndarray:
    """Linear sRGB light, shape (..., 3) -> CIELAB (..., 3) relative to D65."""
    xyz = np.asarray(linear, dtype=np.float64) @ SRGB_TO_XYZ.T / D65_WHITE
    f = np.where(xyz > LAB_EPSILON, np.cbrt(xyz), xyz * LAB_SLOPE + LAB_OFFSET)
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1)


def lab_to_linear(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65), shape (..., 3) -> linear sRGB light (..., 3): the inverse of `linear_to_lab`."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > 6.0 / 29.0, f**3, (f - LAB_OFFSET) / LAB_SLOPE) * D65_WHITE
    return np.asarray(xyz @ np.linalg.inv(SRGB_TO_XYZ).T)


def hue_angle(a: float, b: float) -> float:
    """CIELAB hue angle h_ab in degrees, 0-360."""
    return math.degrees(math.atan2(b, a)) % 360.0


def ita(lightness: float, b: float) -> float:
    """Individual Typology Angle in degrees: arctan((L* - 50) / b*) (Chardon 1991).

    atan2 keeps the sign right when b* is tiny or negative, where the textbook ratio blows up."""
    return math.degrees(math.atan2(lightness - 50.0, b))


@dataclass(frozen=True)
class ItaCategory:
    name: str
    min_deg: float | None  # None: no lower bound
    source: str


@cache
def ita_categories() -> tuple[ItaCategory, ...]:
    data = json.loads((Path(__file__).parent / "ita_categories.json").read_text(encoding="utf-8"))
    cats = tuple(ItaCategory(c["name"], c["min_deg"], c["source"]) for c in data["categories"])
    bounds = [c.min_deg for c in cats if c.min_deg is not None]
    if bounds != sorted(bounds, reverse=True) or cats[-1].min_deg is not None:
        raise ValueError("ita_categories.json: bounds must descend and end with an open category")
    return cats


@dataclass(frozen=True)
class ItaClass:
    category: str
    nearest_boundary_deg: float
    distance_to_boundary_deg: float


def ita_under_lighting(
    lab: tuple[float, float, float], exposure: tuple[float, float], white_balance: float
) -> tuple[float, float]:
    """(lowest, highest) ITA the same skin would show had the photo's exposure been off by a factor in
    `exposure` and its white balance off by up to `white_balance` (a red/blue gain, 0.1 = 10 %).

    Without a colour reference in the frame a photo cannot tell the skin's colour from the light's,
    so ITA is reported as this range rather than as one certain angle."""
    linear = lab_to_linear(np.array(lab))
    angles = []
    for gain in (exposure[0], 1.0, exposure[1]):
        for shift in (-white_balance, 0.0, white_balance):
            moved = linear_to_lab(linear * gain * np.array([1.0 + shift, 1.0, 1.0 - shift]))
            angles.append(ita(float(moved[0]), float(moved[2])))
    return min(angles), max(angles)


def classify_ita(angle: float) -> ItaClass:
    """The ITA category, and how far the angle sits from the nearest category boundary."""
    cats = ita_categories()
    name = next(c.name for c in cats if c.min_deg is None or angle > c.min_deg)
    bounds = [c.min_deg for c in cats if c.min_deg is not None]
    nearest = min(bounds, key=lambda bound: abs(angle - bound))
    return ItaClass(name, nearest, abs(angle - nearest))
