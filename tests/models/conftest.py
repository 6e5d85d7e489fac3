"""Real photos bundled in well-known open packages, and controlled variations of them.

- Grace Hopper (matplotlib `mpl-data/sample_data/grace_hopper.jpg`): official US Navy portrait, public
  domain (work of the US federal government).
- Eileen Collins (scikit-image `data/astronaut.png`): NASA portrait, public domain.
- Non-faces from scikit-image: `coffee.png` (Rachel Michetti, CC0), `chelsea.png` the cat
  (Stefan van der Walt, CC0), `rocket.jpg` (SpaceX, public domain), `no_time_for_that_tiny.gif`.
All ship inside the installed wheels: nothing is downloaded.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import skimage
from PIL import Image, ImageFilter

from shine_mcp.models import Analysis, analyze

SKIMAGE_DATA = Path(skimage.__file__).parent / "data"
HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
ASTRONAUT = SKIMAGE_DATA / "astronaut.png"
NON_FACES = ("coffee.png", "chelsea.png", "rocket.jpg")


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        params.setdefault("quality", 95)
    image.save(out, format=fmt, **params)
    return out.getvalue()


@pytest.fixture(scope="session")
def hopper_bytes() -> bytes:
    return HOPPER.read_bytes()


@pytest.fixture(scope="session")
def hopper() -> Image.Image:
    return Image.open(HOPPER).convert("RGB")


@pytest.fixture(scope="session")
def astronaut_bytes() -> bytes:
    return ASTRONAUT.read_bytes()


@pytest.fixture(scope="session")
def hopper_analysis(hopper_bytes: bytes) -> Analysis:
    return analyze(hopper_bytes)


def soft_ellipse(size: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    """A float mask that is 1 at `centre` and fades to 0 at `radius`, so edits leave no hard edges."""
    y, x = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float64)
    r = np.hypot(x - centre[0], y - centre[1]) / radius
    return np.clip(1.0 - r**2, 0.0, 1.0)


def face_frame(analysis: Analysis) -> tuple[np.ndarray, np.ndarray, float]:
    """(right eye, left eye, eye distance) in image pixels, to place edits on the face."""
    k = analysis.face.keypoints
    right = np.array([k["right_eye"].x, k["right_eye"].y])
    left = np.array([k["left_eye"].x, k["left_eye"].y])
    return right, left, float(np.linalg.norm(left - right))


def add_cheek_redness(image: Image.Image, analysis: Analysis, strength: float = 12.0) -> Image.Image:
    """Flush both cheeks: more red, a little less green, as erythema looks in sRGB."""
    right, left, d = face_frame(analysis)
    pixels = np.asarray(image, dtype=np.float64).copy()
    mask = np.zeros(pixels.shape[:2])
    for eye, outward in ((right, -1.0), (left, 1.0)):
        centre = (eye[0] + outward * 0.1 * d, eye[1] + 0.65 * d)
        mask = np.maximum(mask, soft_ellipse(image.size, centre, 0.45 * d))
    pixels[..., 0] += strength * 0.4 * mask
    pixels[..., 1] -= strength * mask
    pixels[..., 2] -= strength * 0.5 * mask
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))


def add_highlights(image: Image.Image, analysis: Analysis) -> Image.Image:
    """Blend small white glints onto forehead and nose, like an oily T-zone under a lamp.

    Glints of radius 0.1 eye-distances: at 0.12 the three forehead glints and the cap's brim over the top
    of the portrait's forehead region leave a third of it skin, which the occlusion check calls covered."""
    right, left, d = face_frame(analysis)
    mid = (right + left) / 2
    nose = analysis.face.keypoints["nose_tip"]
    pixels = np.asarray(image, dtype=np.float64).copy()
    mask = np.zeros(pixels.shape[:2])
    spots = [(mid[0] + dx * d, mid[1] - 0.6 * d) for dx in (-0.25, 0.0, 0.25)]
    spots += [(nose.x, nose.y - 0.15 * d), (mid[0], mid[1] + 0.25 * d)]
    for centre in spots:
        mask = np.maximum(mask, soft_ellipse(image.size, centre, 0.1 * d))
    pixels = pixels * (1 - 0.85 * mask[..., None]) + 250.0 * 0.85 * mask[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))


def blurred(image: Image.Image, radius: float = 3.0) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))


def scaled_exposure(image: Image.Image, factor: float) -> Image.Image:
    """Scale linear light by `factor` (an exposure change), clipping like a camera does."""
    srgb = np.asarray(image, dtype=np.float64) / 255.0
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4) * factor
    linear = np.clip(linear, 0.0, 1.0)
    out = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return Image.fromarray((out * 255.0).round().astype(np.uint8))
