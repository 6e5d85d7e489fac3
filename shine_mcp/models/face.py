"""Face detection with the vendored BlazeFace front model: anchors, box decoding and blending NMS.

Nothing here decides whether a photo is usable; `pipeline` does, from the faces this returns.
"""

from __future__ import annotations

import math
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
    # The whole-frame pass's keypoints when `refine` replaced them: the sharpness gate's windows stay
    # where its 6.5 px limit was calibrated (see `refine`).
    whole_frame_keypoints: dict[str, tuple[float, float]] | None = None

    def scaled(self, sx: float, sy: float) -> Face:
        x, y, w, h = self.box
        points = {k: (px * sx, py * sy) for k, (px, py) in self.keypoints.items()}
        first = self.whole_frame_keypoints
        before = None if first is None else {k: (px * sx, py * sy) for k, (px, py) in first.items()}
        return Face(self.score, (x * sx, y * sy, w * sx, h * sy), points, before)


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


def _run(tensor: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    sess = session("blazeface_front_128")
    outputs = dict(
        zip([o.name for o in sess.get_outputs()], sess.run(None, {"input:0": tensor}), strict=True)
    )
    scores = np.concatenate([outputs["Identity:0"][0, :, 0], outputs["Identity_1:0"][0, :, 0]])
    boxes = np.concatenate([outputs["Identity_2:0"][0], outputs["Identity_3:0"][0]])
    return decode(scores, boxes, threshold)


def _unmirror(rows: np.ndarray) -> np.ndarray:
    """Rows found on the left-right mirrored input, in the unmirrored input's coordinates: x -> 128 - x,
    and each left/right keypoint pair swapped back (the person's right eye is on the other side)."""
    out = rows.copy()
    out[:, 0] = INPUT_SIZE - rows[:, 0]
    points = rows[:, 4:16].reshape(-1, 6, 2).copy()
    points[:, :, 0] = INPUT_SIZE - points[:, :, 0]
    points = points[:, [1, 0, 2, 3, 5, 4]]
    out[:, 4:16] = points.reshape(-1, 12)
    return out


def detect_faces(
    image: Image.Image, threshold: float = SCORE_THRESHOLD, mirrored: bool = False
) -> list[Face]:
    """All faces above `threshold`, best first, in `image` pixel coordinates.

    `mirrored` also runs the detector on the left-right mirror image and blends both: the detector is
    not mirror-symmetric, and averaging the two views steadies the keypoints (a mirrored selfie then
    gives the mirrored keypoints of the same photo, not different ones)."""
    tensor, scale, ox, oy = letterbox(image)
    probs, rows = _run(tensor, threshold)
    if mirrored:
        flipped_probs, flipped_rows = _run(np.ascontiguousarray(tensor[:, :, ::-1]), threshold)
        probs = np.concatenate([probs, flipped_probs])
        rows = np.concatenate([rows, _unmirror(flipped_rows)])
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


# Each refining view is this many face-box widths wide (the face fills half the 128 px input); a round
# is one view per span, mirrored and not (two detector runs per span), the views' keypoints averaged.
# Measured on the outside faces' same-photo variants (ITA / shine / dark-spot change RMS): none 2.67 /
# 3.55 / 1.15; one view 0.95 / 1.67 / 0.86; views of 1.7 and 2.3 widths 0.93 / 0.90 / 0.66; two rounds
# of those 0.85 / 0.56 / 0.75. Each run costs 2.5 ms idle, ~9 ms on a loaded machine: one view it is.
REFINE_SPANS: tuple[float, ...] = (2.0,)
REFINE_THRESHOLD = 0.5  # the face is known to be there; a turned or tilted one may score lower upright
REFINE_ROUNDS = 1  # later rounds are centred and levelled on the previous round's keypoints
# A view whose eyes are more than this much nearer or farther apart than the whole-frame pass found has
# read a strongly turned face differently (0.69-0.81 on insightface-t1#5, turned 63 degrees, sharp,
# blurred or noisy: its regions then fell off the face); the other faces of the outside set measure
# 0.94-1.16 with blur and noise. The whole-frame keypoints are kept then.
REFINE_MAX_SCALE_CHANGE = 0.18
CENTRE_POINTS = ("right_eye", "left_eye", "nose_tip", "mouth_center")


def refine(image: Image.Image, face: Face, rounds: int = REFINE_ROUNDS) -> Face:
    """The face's keypoints measured again on an upright view of the face alone, mirrored and not.

    In the whole-frame pass a face a third of the frame wide is ~40 px of the 128 px input, so a keypoint
    is placed to ~1 input pixel, 2-3 % of the face's width, and differently after a re-crop, a tilt or a
    mirror of the same photo; the regions are placed from these keypoints. Here the face is levelled by
    its eyes and fills half the input, and the two mirror views are blended, so that a re-crop, a mirror
    or a tilt of one photo gives nearly the same keypoints and the regions land on the same skin (issue
    16). Keeps `face` if a view finds nothing; the box stays the whole-frame pass's.

    The whole-frame keypoints are kept too (`whole_frame_keypoints`): the sharpness gate's 6.5 px limit
    was calibrated on windows placed and sized from them (sharp faces of the set <= 6.4 px, blurs of 3
    crop pixels >= 7.0), and the view's eye distance differs from the whole-frame one by -31 % to +16 %
    on the set, which would scale every edge width with it: with both from the view the two no longer
    separate (<= 6.2 against >= 6.4). Keeping the whole-frame eye distance for the crop instead undoes
    most of the gain (ITA 2.8, shine 1.9, spots 1.0)."""
    x, y, w, h = face.box
    centre = (x + w / 2, y + h / 2)
    refined = face
    for round_ in range(rounds):
        if round_:
            centre = (
                sum(refined.keypoints[k][0] for k in CENTRE_POINTS) / len(CENTRE_POINTS),
                sum(refined.keypoints[k][1] for k in CENTRE_POINTS) / len(CENTRE_POINTS),
            )
        views = [_keypoints_in_view(image, refined, centre, span * max(w, h)) for span in REFINE_SPANS]
        found = [v for v in views if v is not None]
        if not found:
            break
        points = {
            k: (sum(v[k][0] for v in found) / len(found), sum(v[k][1] for v in found) / len(found))
            for k in found[0]
        }
        if abs(_eye_distance(points) / _eye_distance(refined.keypoints) - 1.0) > REFINE_MAX_SCALE_CHANGE:
            break
        refined = Face(face.score, face.box, points, face.keypoints)
    return refined


def _keypoints_in_view(
    image: Image.Image, face: Face, centre: tuple[float, float], side: float
) -> dict[str, tuple[float, float]] | None:
    """Keypoints found on a `side`-wide square view around `centre`, levelled by `face`'s eyes, in
    `image` coordinates; None when the view shows no face near its centre."""
    (rx, ry), (lx, ly) = face.keypoints["right_eye"], face.keypoints["left_eye"]
    roll = math.atan2(ly - ry, lx - rx)
    s = side / INPUT_SIZE  # source pixels per view pixel
    a, b, d, e = math.cos(roll) * s, -math.sin(roll) * s, math.sin(roll) * s, math.cos(roll) * s
    half = INPUT_SIZE / 2
    c, f = centre[0] - (a + b) * half, centre[1] - (d + e) * half
    corners = [(0, 0), (INPUT_SIZE, 0), (0, INPUT_SIZE), (INPUT_SIZE, INPUT_SIZE)]
    xs = [a * u + b * v + c for u, v in corners]
    ys = [d * u + e * v + f for u, v in corners]
    left, top = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
    right, bottom = min(image.width, math.ceil(max(xs))), min(image.height, math.ceil(max(ys)))
    if right - left < 2 or bottom - top < 2:
        return None
    region = image.crop((left, top, right, bottom))
    factor = max(1, int(s))
    if factor > 1:
        region = region.reduce(factor)
    k = 1.0 / factor
    view = region.transform(
        (INPUT_SIZE, INPUT_SIZE),
        Image.Transform.AFFINE,
        (a * k, b * k, (c - left) * k, d * k, e * k, (f - top) * k),
        Image.Resampling.BILINEAR,
        fillcolor=(128, 128, 128),
    )
    found = detect_faces(view, REFINE_THRESHOLD, mirrored=True)

    def off_centre(candidate: Face) -> float:
        bx, by, bw, bh = candidate.box
        return math.hypot(bx + bw / 2 - half, by + bh / 2 - half)

    best = min(found, key=off_centre, default=None)
    if best is None or off_centre(best) > 0.25 * INPUT_SIZE:  # none, or not the face we were given
        return None
    return {name: (a * u + b * v + c, d * u + e * v + f) for name, (u, v) in best.keypoints.items()}


def _eye_distance(points: dict[str, tuple[float, float]]) -> float:
    (rx, ry), (lx, ly) = points["right_eye"], points["left_eye"]
    return max(math.hypot(lx - rx, ly - ry), 1e-6)
