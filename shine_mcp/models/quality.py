"""Quality gates: measure what limits a photo, and say which metrics each limit withholds and why."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from .face import Face
from .measure import Measurements
from .regions import EYE_CENTRE, EYE_DISTANCE, FaceCrop
from .report import Gate

SKIN_REGIONS = ("forehead", "right_cheek", "left_cheek", "chin")
# Anthropometric proportions used to turn keypoint offsets into an approximate yaw angle: half the
# bitragion breadth over the tragion-to-nose-tip depth (~7.2 cm / ~11 cm), and the nose tip's depth
# in front of the eyes over the interpupillary distance (~2.5 cm / ~6.3 cm).
EAR_WIDTH_OVER_DEPTH = 0.65
NOSE_DEPTH_OVER_EYES = 0.4


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
    """Variance of the Laplacian of L* over skin whose neighbourhood is all skin (edges excluded)."""
    s = m.combined(SKIN_REGIONS)
    if s["fine"] < 50:
        return 0.0
    mean = s["sum_lap"] / s["fine"]
    return max(0.0, s["sum_lap2"] / s["fine"] - mean * mean)


def median_lightness(m: Measurements, masks: np.ndarray) -> float:
    union = masks.sum(axis=0) > 0
    return float(np.median(m.lab[..., 0][union])) if union.any() else 0.0


def cheek_difference(m: Measurements) -> float:
    right, left = m.regions["right_cheek"].mean("sum_l"), m.regions["left_cheek"].mean("sum_l")
    if right is None or left is None:
        return 0.0
    return abs(right - left)


def evaluate_gates(
    original_size: tuple[int, int], face: Face, crop: FaceCrop, m: Measurements, masks: np.ndarray
) -> list[Gate]:
    """Every gate, passed or not, with its measured value: the report shows all of them."""
    roll, yaw = head_pose(crop)
    skin = m.combined(SKIN_REGIONS)
    measured = {
        "resolution": float(min(original_size)),
        "face_size": face.box[2],
        "sharpness": sharpness(m),
        "clipping": 100.0 * skin.fraction("clipped"),
        "brightness": median_lightness(m, masks),
        "colour": m.reference[3],
        "uneven_lighting": cheek_difference(m),
        "head_roll": abs(roll),
        "head_yaw": abs(yaw),
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
    distance = gate.measured - gate.threshold if gate.comparison == ">=" else gate.threshold - gate.measured
    return min(1.0, max(0.0, distance / soft_band))
