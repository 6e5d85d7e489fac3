"""The normalised face crop and the skin regions placed on it from BlazeFace keypoints.

The crop is rotated so the eyes are level and scaled so they sit EYE_DISTANCE px apart: every
threshold downstream (sharpness, band-pass scales, spot size) is then in face units, whatever the
camera's resolution or distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from .face import Face

CROP_SIZE = 240
EYE_DISTANCE = 80.0
EYE_CENTRE = (120.0, 96.0)  # crop coordinates of the midpoint between the eyes
REGIONS: tuple[str, ...] = (
    "forehead",
    "right_cheek",
    "left_cheek",
    "nose",
    "chin",
)  # order of the ONNX graph


@cache
def pixel_centres() -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of every crop pixel's centre; built once, it is the same for every photo."""
    y, x = np.mgrid[0:CROP_SIZE, 0:CROP_SIZE].astype(np.float32) + 0.5
    y.setflags(write=False)
    x.setflags(write=False)
    return x, y


@dataclass(frozen=True)
class FaceCrop:
    """An upright, scale-normalised face crop and how it maps back to the source image."""

    image: Image.Image  # CROP_SIZE square, RGB
    inside: np.ndarray  # bool [H, W]: crop pixels that came from inside the source image
    scale: float  # source pixels per crop pixel
    roll_deg: float
    keypoints: dict[str, tuple[float, float]]  # in crop coordinates
    # where the whole-frame detection put them, in crop coordinates: the sharpness gate's windows
    focus_keypoints: dict[str, tuple[float, float]] | None = None


def _affine(face: Face) -> tuple[float, float, float, float, float, float, float, float]:
    (rx, ry), (lx, ly) = face.keypoints["right_eye"], face.keypoints["left_eye"]
    dx, dy = lx - rx, ly - ry
    distance = max(math.hypot(dx, dy), 1e-6)
    roll = math.atan2(dy, dx)
    s = distance / EYE_DISTANCE
    cos, sin = math.cos(roll) * s, math.sin(roll) * s
    mx, my = (rx + lx) / 2, (ry + ly) / 2
    cx, cy = EYE_CENTRE
    # crop (x, y) -> source (a x + b y + c, d x + e y + f)
    a, b, d, e = cos, -sin, sin, cos
    return a, b, mx - a * cx - b * cy, d, e, my - d * cx - e * cy, s, math.degrees(roll)


def face_crop(image: Image.Image, face: Face) -> FaceCrop:
    """Cut the normalised crop; downscale with a box filter first so shrinking never aliases."""
    a, b, c, d, e, f, s, roll = _affine(face)
    corners = [(0, 0), (CROP_SIZE, 0), (0, CROP_SIZE), (CROP_SIZE, CROP_SIZE)]
    xs = [a * x + b * y + c for x, y in corners]
    ys = [d * x + e * y + f for x, y in corners]
    left, top = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
    right, bottom = min(image.width, math.ceil(max(xs))), min(image.height, math.ceil(max(ys)))
    region = image.crop((left, top, max(right, left + 1), max(bottom, top + 1)))
    factor = max(1, int(s))
    if factor > 1:
        region = region.reduce(factor)
    k = 1.0 / factor
    # map into the reduced, cropped region's coordinates
    data = (a * k, b * k, (c - left) * k, d * k, e * k, (f - top) * k)
    crop = region.transform((CROP_SIZE, CROP_SIZE), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
    grid_x, grid_y = pixel_centres()
    src_x = a * grid_x + b * grid_y + c
    src_y = d * grid_x + e * grid_y + f
    inside = (src_x >= 0) & (src_x < image.width) & (src_y >= 0) & (src_y < image.height)
    det = a * e - b * d

    def to_crop(points: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        return {
            name: ((e * (px - c) - b * (py - f)) / det, (-d * (px - c) + a * (py - f)) / det)
            for name, (px, py) in points.items()
        }

    focus = to_crop(face.whole_frame_keypoints) if face.whole_frame_keypoints else None
    return FaceCrop(crop, inside, s, roll, to_crop(face.keypoints), focus)


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    x, y = pixel_centres()
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def region_masks(crop: FaceCrop) -> np.ndarray:
    """float32 [5, H, W] masks in REGIONS order, placed in eye-distance units from the keypoints.

    Proportions follow the usual facial thirds: brows sit ~0.35 eye-distances above the eyes, the
    nose tip ~0.5 below, the mouth ~1.0 below, the chin ~0.4 below the mouth. Cheeks sit under each
    eye, nudged outward to stay off the nose; the nose region spans bridge to tip."""
    d = EYE_DISTANCE
    ex, ey = EYE_CENTRE
    (rx, _), (lx, _) = crop.keypoints["right_eye"], crop.keypoints["left_eye"]
    nx, ny = crop.keypoints["nose_tip"]
    mx, my = crop.keypoints["mouth_center"]
    ny = min(max(ny, ey + 0.3 * d), ey + 0.8 * d)  # keep regions sane if a keypoint wanders
    my = min(max(my, ny + 0.25 * d), ey + 1.4 * d)
    x, y = pixel_centres()
    forehead = (np.abs(x - ex) <= 0.45 * d) & (y >= ey - 0.8 * d) & (y <= ey - 0.42 * d)
    right_cheek = _ellipse(rx - 0.1 * d, ey + 0.65 * d, 0.2 * d, 0.2 * d)
    left_cheek = _ellipse(lx + 0.1 * d, ey + 0.65 * d, 0.2 * d, 0.2 * d)
    top = ey + 0.1 * d
    nose = _ellipse(nx, (top + ny) / 2, 0.1 * d, max((ny - top) / 2, 0.1 * d))
    chin = _ellipse(mx, my + 0.42 * d, 0.25 * d, 0.12 * d)
    masks: np.ndarray = np.stack([forehead, right_cheek, left_cheek, nose, chin]) & crop.inside
    return masks.astype(np.float32)
