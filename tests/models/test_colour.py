"""sRGB -> CIELAB -> ITA against published skin colour data, and the ONNX graph against the reference."""

from __future__ import annotations

import numpy as np
import pytest

from shine_mcp.models.colour import (
    D65_WHITE,
    LAB_EPSILON,
    LAB_OFFSET,
    LAB_SLOPE,
    classify_ita,
    ita,
    srgb_to_lab,
)
from shine_mcp.models.measure import measure

# ColorChecker "dark skin" and "light skin" patches: CIE XYZ (D65, 2 deg observer, Y of white = 100)
# from BabelColor's average spectral data, Pascale D., "RGB coordinates of the Macbeth ColorChecker",
# The BabelColor Company, 2006 (as tabulated in patriciogonzalezvivo/lygia color/checker.glsl).
SKIN_PATCHES_XYZ_D65 = {
    "dark skin": (11.684, 10.637, 7.242),
    "light skin": (37.29, 34.404, 25.454),
}
# IEC 61966-2-1:1999 encoding: XYZ (D65) -> linear sRGB, the matrix as printed in the standard.
IEC_XYZ_TO_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])
# Monk Skin Tone scale, 10 tones lightest to darkest (Monk E., Google 2022, skintone.google, CC BY 4.0).
MONK_SKIN_TONES = (
    "f6ede4",
    "f3e7db",
    "f7ead0",
    "eadaba",
    "d7bd96",
    "a07e56",
    "825c43",
    "604134",
    "3a312a",
    "292420",
)


def cie_lab(xyz: tuple[float, float, float]) -> np.ndarray:
    """CIE 15:2004 XYZ -> L*a*b* with the D65 white, straight from the definition."""
    t = np.asarray(xyz) / 100.0 / D65_WHITE
    f = np.where(t > LAB_EPSILON, np.cbrt(t), t * LAB_SLOPE + LAB_OFFSET)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def iec_encode(xyz: tuple[float, float, float]) -> np.ndarray:
    """Published XYZ -> 16-bit sRGB codes with the standard's own matrix and transfer function."""
    linear = np.clip(IEC_XYZ_TO_SRGB @ (np.asarray(xyz) / 100.0), 0, 1)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.round(encoded * 65535) / 65535


@pytest.mark.parametrize("patch", list(SKIN_PATCHES_XYZ_D65))
def test_skin_patches_match_published_colorimetry_within_half_a_delta_e(patch: str) -> None:
    xyz = SKIN_PATCHES_XYZ_D65[patch]
    reference = cie_lab(xyz)
    ours = srgb_to_lab(iec_encode(xyz))
    assert np.linalg.norm(ours - reference) < 0.5
    assert abs(ita(ours[0], ours[2]) - ita(reference[0], reference[2])) < 0.5


def test_the_dark_skin_patch_falls_in_the_dark_ita_category() -> None:
    lab = cie_lab(SKIN_PATCHES_XYZ_D65["dark skin"])
    assert classify_ita(ita(lab[0], lab[2])).category == "dark"  # ITA about -39 degrees


def test_monk_skin_tones_give_strictly_decreasing_ita() -> None:
    rgb = np.array([[int(h[i : i + 2], 16) for i in (0, 2, 4)] for h in MONK_SKIN_TONES]) / 255.0
    angles = [ita(lab[0], lab[2]) for lab in srgb_to_lab(rgb)]
    assert all(a > b for a, b in zip(angles, angles[1:], strict=False))
    assert angles[0] > 55 and angles[-1] < -30  # spans very light to dark


@pytest.mark.parametrize(
    ("angle", "category", "boundary"),
    [
        (60.0, "very_light", 55.0),
        (41.5, "light", 41.0),
        (30.0, "intermediate", 28.0),
        (9.0, "brown", 10.0),
        (-45.0, "dark", -30.0),
    ],
)
def test_ita_categories_follow_chardon_and_del_bino(angle: float, category: str, boundary: float) -> None:
    result = classify_ita(angle)
    assert result.category == category
    assert result.nearest_boundary_deg == boundary
    assert result.distance_to_boundary_deg == pytest.approx(abs(angle - boundary))


def test_the_onnx_graph_computes_the_same_lab_as_the_reference() -> None:
    codes = np.random.default_rng(3).integers(0, 256, (240, 240, 3), dtype=np.uint8)
    masks = np.zeros((5, 240, 240), dtype=np.float32)
    graph = measure(codes, masks).lab
    reference = srgb_to_lab(codes / 255.0)
    assert np.abs(graph - reference).max() < 0.01
