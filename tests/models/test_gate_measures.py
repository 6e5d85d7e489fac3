"""The exposure and flat-pixel measures the gates use, held to their plain numpy definitions: they are
computed the quick way (two pixels converted to L*, nine views summed in place) and must give the same
numbers as converting every pixel and stacking every neighbourhood."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from shine_mcp.models.colour import srgb_to_lab
from shine_mcp.models.measure import Measurements
from shine_mcp.models.quality import FLAT_PIXEL_SD, FRAME_SAMPLE_SIDE, flat_pixels, frame_bright_end


def lightness_percentile(image: Image.Image) -> float:
    """The definition: every pixel of the small copy to CIELAB, then the 95th percentile of L*."""
    factor = max(1, max(image.size) // FRAME_SAMPLE_SIDE)
    small = image.reduce(factor) if factor > 1 else image
    return float(np.percentile(srgb_to_lab(np.asarray(small, dtype=np.float64) / 255.0)[..., 0], 95))


def test_the_frame_s_exposure_is_the_95th_percentile_of_its_lightness(hopper: Image.Image) -> None:
    rng = np.random.default_rng(7)
    dark = Image.fromarray((rng.random((400, 300, 3)) ** 4 * 40).astype(np.uint8))  # under L* 8: linear part
    flat = Image.new("RGB", (640, 480), (200, 180, 160))
    noise = Image.fromarray(rng.integers(0, 256, (1000, 750, 3), dtype=np.uint8))
    for image in (hopper, dark, flat, noise, hopper.resize((161, 97))):
        assert frame_bright_end(image) == pytest.approx(lightness_percentile(image), abs=1e-9)


def test_flat_pixels_are_those_whose_three_by_three_neighbourhood_varies_less_than_the_limit() -> None:
    rng = np.random.default_rng(3)
    lab = np.zeros((240, 240, 3), dtype=np.float32)
    lab[..., 0] = rng.normal(60.0, 1.0, (240, 240))
    lab[:120, :120, 0] = 55.0 + rng.normal(0.0, 0.05, (120, 120))  # a flat patch, as a card or a drawing
    m = Measurements(lab, {}, (0.0, 0.0, 0.0, 0.0))
    lum = lab[..., 0].astype(np.float64)
    stacked = np.stack([lum[dy : 238 + dy, dx : 238 + dx] for dy in range(3) for dx in range(3)])
    expected = np.zeros((240, 240), dtype=bool)
    expected[1:-1, 1:-1] = stacked.std(axis=0) < FLAT_PIXEL_SD
    flat = flat_pixels(m)
    assert np.array_equal(flat, expected)
    assert flat[10:110, 10:110].all() and not flat[130:, 130:].any()
