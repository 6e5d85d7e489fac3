"""Skin progress over a person's whole report history (a premium benefit): each metric's values, oldest first,
and the change from the first measured value to the latest. Plain functions of stored reports; the premium
check is the tool's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shine_mcp.store.skin_reports import SkinReportRecord


@dataclass(frozen=True)
class Point:
    report_id: str
    at: datetime
    value: float
    confidence: float


@dataclass(frozen=True)
class Series:
    metric: str
    unit: str
    points: tuple[Point, ...]  # oldest first; reports that withheld the metric are left out

    @property
    def change(self) -> float | None:
        """Latest minus first measured value; none with fewer than two."""
        return self.points[-1].value - self.points[0].value if len(self.points) > 1 else None


def progress(records: Sequence[SkinReportRecord]) -> list[Series]:
    """Each metric's values across `records` (any order in, oldest first out)."""
    ordered = sorted(records, key=lambda r: (r.created, r.id))
    points: dict[str, list[Point]] = {}
    units: dict[str, str] = {}
    for record in ordered:
        metrics: list[dict[str, Any]] = list((record.analysis or {}).get("metrics") or [])
        for metric in metrics:
            if metric.get("value") is None:
                continue
            name = str(metric["name"])
            units[name] = str(metric.get("unit") or "")
            points.setdefault(name, []).append(
                Point(record.id, record.created, float(metric["value"]), float(metric.get("confidence") or 0))
            )
    return [Series(name, units[name], tuple(found)) for name, found in points.items()]
