"""Runs the skin_metrics ONNX graph on a face crop and turns its per-region sums into named measurements.

What the numbers mean to a person (confidence, gating, wording) is decided in `metrics`, not here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import numpy as np

from .assets import session
from .regions import REGIONS


@cache
def graph_metadata() -> dict[str, object]:
    meta = session("skin_metrics").get_modelmeta().custom_metadata_map
    return {key: json.loads(value) if key != "version" else value for key, value in meta.items()}


@dataclass(frozen=True)
class RegionStats:
    """Sums over one region's pixels, as the graph's FEATURES name them, plus derived means."""

    sums: dict[str, float]

    def __getitem__(self, key: str) -> float:
        return self.sums[key]

    def mean(self, key: str, weight: str = "valid") -> float | None:
        w = self.sums[weight]
        return self.sums[key] / w if w > 0 else None

    def fraction(self, key: str, of: str = "area") -> float:
        total = self.sums[of]
        return self.sums[key] / total if total > 0 else 0.0


@dataclass(frozen=True)
class Measurements:
    lab: np.ndarray  # [H, W, 3] CIELAB of the crop
    regions: dict[str, RegionStats]
    reference: tuple[float, float, float, float]  # cheeks' unclipped mean L*, a*, b*, C*

    def combined(self, names: tuple[str, ...]) -> RegionStats:
        keys = self.regions[names[0]].sums.keys()
        return RegionStats({k: sum(self.regions[n].sums[k] for n in names) for k in keys})


def measure(rgb: np.ndarray, masks: np.ndarray) -> Measurements:
    """rgb: uint8 [H, W, 3] sRGB codes; masks: float32 [R, H, W] in regions.REGIONS order."""
    pixels = np.ascontiguousarray(rgb, dtype=np.uint8)
    lab, stats, reference = session("skin_metrics").run(
        ["lab", "region_stats", "reference"], {"rgb": pixels, "masks": masks.astype(np.float32)}
    )
    features = graph_metadata()["features"]
    assert isinstance(features, list)
    regions = {
        name: RegionStats({feature: float(v) for feature, v in zip(features, row, strict=True)})
        for name, row in zip(REGIONS, stats, strict=True)
    }
    ref = tuple(float(v) for v in reference)
    return Measurements(lab, regions, (ref[0], ref[1], ref[2], ref[3]))
