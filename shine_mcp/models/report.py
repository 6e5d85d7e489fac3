"""The public result of an analysis: pydantic models whose field names are a stable, published API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .assets import ModelInfo

MetricName = Literal[
    "lab_l",
    "lab_a",
    "lab_b",
    "hue_angle",
    "ita",
    "redness",
    "shine",
    "tone_unevenness",
    "texture",
    "dark_spots",
]
GateName = Literal[
    "resolution",
    "face_size",
    "sharpness",
    "clipping",
    "brightness",
    "colour",
    "uneven_lighting",
    "head_roll",
    "head_yaw",
    "skin_colour",
    "occlusion",
    "light",
]
RegionName = Literal["forehead", "right_cheek", "left_cheek", "nose", "chin"]


class Metric(BaseModel):
    """One measurement. `value` is null when a gate withheld it; `limited_by` then says which."""

    name: MetricName
    value: float | None
    unit: str
    confidence: float = Field(ge=0.0, le=1.0, description="0-1: how far to trust the value from this photo")
    regions_used: list[RegionName]
    limited_by: list[GateName] = Field(description="failed gates that withheld this metric")
    explanation: str
    details: dict[str, float | int | str] = Field(default_factory=dict)


class Gate(BaseModel):
    """A photo-quality check; a failed gate withholds only the metrics in `blocks`."""

    name: GateName
    passed: bool
    measured: float
    threshold: float
    comparison: Literal[">=", "<="] = Field(description="passes when `measured comparison threshold`")
    unit: str
    blocks: list[MetricName]
    advice: str | None = Field(description="what to change in the next photo; null when passed")


class Point(BaseModel):
    x: float
    y: float


class Box(BaseModel):
    x: float
    y: float
    width: float
    height: float


class FaceInfo(BaseModel):
    """The detected face in original-image pixels (after EXIF orientation)."""

    score: float
    box: Box
    keypoints: dict[str, Point]
    roll_deg: float
    yaw_deg: float


class ImageInfo(BaseModel):
    format: Literal["jpeg", "png", "webp"]
    width: int
    height: int
    icc: Literal["converted", "assumed_srgb"]
    icc_profile: str | None = Field(description="the embedded profile's description, if any")
    metadata_removed: list[str] = Field(description="metadata found in the file and discarded (e.g. gps)")
    analysed_scale: float = Field(
        description="decoded pixels per original pixel (JPEGs decode at reduced size)"
    )


class SkinType(BaseModel):
    value: Literal["oily", "dry", "combination", "normal"] | None
    sensitive: bool | None
    evidence: list[str] = Field(description="each answer or photo observation that was used")
    explanation: str


class Withheld(BaseModel):
    name: str
    kind: Literal["refusal", "gate", "insufficient_data"]
    reason: str


class Analysis(BaseModel):
    """A cosmetic skin analysis of one photo: what it can support, how sure, and what it withheld."""

    metrics: list[Metric]
    gates: list[Gate]
    face: FaceInfo
    image: ImageInfo
    skin_type: SkinType
    withheld: list[Withheld]
    notice: str
    models: list[ModelInfo]

    def metric(self, name: MetricName) -> Metric:
        return next(m for m in self.metrics if m.name == name)

    def gate(self, name: GateName) -> Gate:
        return next(g for g in self.gates if g.name == name)
