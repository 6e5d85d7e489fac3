"""Face detection with the vendored BlazeFace front model: anchors, box decoding and blending NMS.

Nothing here decides whether a photo is usable; `pipeline` does, from the faces this returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from .assets import session

INPUT_SIZE = 128
# MediaPipe's short-range detector: 8-pixel stride with 2 anchors per cell, then 16-pixel stride
# with 6 (four 16-stride layers merged), anchor size fixed to 1 (MediaPipe `fixed_anchor_size`).
ANCHOR_LAYERS: tuple[tuple[int, int], ...] = ((8, 2), (16, 6))
SCORE_THRESHOLD = 0.75  # keijiro's default for this export; MediaPipe uses 0.5 with a tracker behind it
IOU_THRESHOLD = 0.3  # as in MediaPipe's face detection graph and keijiro's Postprocess2
KEYPOINT_NAMES: tuple[str, ...] = (
    "right_eye",  # the person's right eye: on the image's left in a selfie that is not mirrored
    "left_eye",
    "nose_tip",
    "mouth_center",
    "right_ear_tragion",
    "left_ear_tragion",
)


@dataclass(frozen=True)
class Face:
    """One detection in the pixel coordinates of the image it was found in."""

    score: float
    box: tuple[float, float, float, float]  # x, y (top-left), width, height
    keypoints: dict[str, tuple[float, float]]

    def scaled(self, sx: float, sy: float) -> Face:
        x, y, w, h = self.box
        points = {k: (px * sx, py * sy) for k, (px, py) in self.keypoints.items()}
        return Face(self.score, (x * sx, y * sy, w * sx, h * sy), points)


@cache
def anchors() -> np.ndarray:
    """896 anchor centres in [0, 1] input coordinates, in the order of the model's outputs."""
    centres: list[np.ndarray] = []
    for stride, per_cell in ANCHOR_LAYERS:
        cells = INPUT_SIZE // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


def letterbox(image: Image.Image) -> tuple[np.ndarray, float, float, float]:
    """Fit the image into 128x128 keeping its aspect ratio; return the tensor and how to map back."""
    w, h = image.size
    scale = INPUT_SIZE / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    small = rgb.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.float32)
    ox, oy = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
    canvas[oy : oy + nh, ox : ox + nw] = np.asarray(small, dtype=np.float32) / 127.5 - 1.0
    return canvas[None], scale, float(ox), float(oy)


def decode(scores: np.ndarray, boxes: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs -> (probabilities, rows of [cx, cy, w, h, 12 keypoint coords]) in input pixels."""
    probs = 1.0 / (1.0 + np.exp(-np.clip(scores.astype(np.float64), -100.0, 100.0)))
    keep = probs > threshold
    rows = boxes[keep].astype(np.float64)
    centre = anchors()[keep].astype(np.float64) * INPUT_SIZE
    rows[:, 0:2] += centre
    rows[:, 4:16] += np.tile(centre, 6)
    return probs[keep], rows


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    inner = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = a[2] * a[3] + b[2] * b[3] - inner
    return float(inner / union) if union > 0 else 0.0


def blend_overlaps(probs: np.ndarray, rows: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """MediaPipe's weighted NMS: overlapping detections are averaged by score, not discarded,
    which steadies the keypoints that the regions are placed from."""
    order = np.argsort(-probs)
    used = np.zeros(len(order), dtype=bool)
    merged: list[tuple[float, np.ndarray]] = []
    for i, idx in enumerate(order):
        if used[i]:
            continue
        group = [
            j for j in range(i, len(order)) if not used[j] and iou(rows[idx], rows[order[j]]) >= IOU_THRESHOLD
        ]
        for j in group:
            used[j] = True
        weights = probs[order[group]]
        merged.append((float(probs[idx]), (rows[order[group]] * weights[:, None]).sum(0) / weights.sum()))
    return merged


def detect_faces(image: Image.Image, threshold: float = SCORE_THRESHOLD) -> list[Face]:
    """All faces above `threshold`, best first, in `image` pixel coordinates."""
    tensor, scale, ox, oy = letterbox(image)
    sess = session("blazeface_front_128")
    outputs = dict(
        zip([o.name for o in sess.get_outputs()], sess.run(None, {"input:0": tensor}), strict=True)
    )
    scores = np.concatenate([outputs["Identity:0"][0, :, 0], outputs["Identity_1:0"][0, :, 0]])
    boxes = np.concatenate([outputs["Identity_2:0"][0], outputs["Identity_3:0"][0]])
    probs, rows = decode(scores, boxes, threshold)
    faces: list[Face] = []
    for prob, row in blend_overlaps(probs, rows):
        cx, cy, w, h = ((row[0] - ox) / scale, (row[1] - oy) / scale, row[2] / scale, row[3] / scale)
        points = row[4:16].reshape(6, 2)
        keypoints = {
            name: (float((px - ox) / scale), float((py - oy) / scale))
            for name, (px, py) in zip(KEYPOINT_NAMES, points, strict=True)
        }
        faces.append(Face(prob, (float(cx - w / 2), float(cy - h / 2), float(w), float(h)), keypoints))
    return faces
