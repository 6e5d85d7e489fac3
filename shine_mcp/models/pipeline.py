"""`analyze`: the one entry point from photo bytes to an `Analysis`, and the refusals it always carries."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from .assets import model_infos
from .errors import ImageRejected
from .face import Face, detect_faces
from .intake import IntakeResult, open_photo
from .measure import measure
from .metrics import all_metrics
from .quality import evaluate_gates, gate_specs, head_pose
from .regions import face_crop, region_masks
from .report import Analysis, Box, FaceInfo, ImageInfo, Metric, Point, Withheld
from .skin_type import Answers, infer_skin_type

NOTICE = (
    "Cosmetic guidance from one photo, not a medical assessment; see a dermatologist about any skin concern."
)
EDGE_TOLERANCE = 0.05  # BlazeFace boxes of whole faces near an edge overshoot it by a few percent
WANTED_FACE_WIDTH = 190.0  # decoded face width that lets the normalised crop shrink, never enlarge


@cache
def refusals() -> tuple[Withheld, ...]:
    data = json.loads((Path(__file__).parent / "refusals.json").read_text(encoding="utf-8"))
    return tuple(Withheld(name=r["name"], kind="refusal", reason=r["reason"]) for r in data["refusals"])


def the_one_face(image: Image.Image) -> Face:
    """Exactly one face, wholly in the frame; otherwise a refusal that says how to retake."""
    faces = detect_faces(image)
    if not faces:
        raise ImageRejected(
            "no_face",
            "no face found: take a front-facing photo in even light, with your whole face filling "
            "about a third of the frame",
        )
    if len(faces) > 1:
        raise ImageRejected("multiple_faces", f"{len(faces)} faces found: crop the photo to one face")
    face = faces[0]
    x, y, w, h = face.box
    tol_x, tol_y = EDGE_TOLERANCE * w, EDGE_TOLERANCE * h
    edges = [
        name
        for name, cut in (
            ("left", x < -tol_x),
            ("top", y < -tol_y),
            ("right", x + w > image.width + tol_x),
            ("bottom", y + h > image.height + tol_y),
        )
        if cut
    ]
    if edges:
        where = " and ".join(edges)
        raise ImageRejected(
            "face_cut_off",
            f"face cut off at the {where} edge{'s' if len(edges) > 1 else ''}: step back or re-frame so your "
            "whole face is in the photo",
        )
    return face


def decode_with_face(data: bytes) -> tuple[IntakeResult, Face]:
    """Decode small, find the face, and decode again larger only if the face came out too small."""
    return locate_face(data, open_photo(data))


def locate_face(data: bytes, intake: IntakeResult) -> tuple[IntakeResult, Face]:
    """The face in a first decode of `data`; decodes again larger only if the face came out too small.

    A stage of its own so a caller (the MCP tool) can report progress and check for cancellation
    between decoding, finding the face and measuring."""
    face = the_one_face(intake.image)
    if intake.scale < 1.0 and face.box[2] < WANTED_FACE_WIDTH:
        wanted_scale = min(1.0, WANTED_FACE_WIDTH / (face.box[2] / intake.scale))
        intake = open_photo(data, min_short_side=math.ceil(min(intake.original_size) * wanted_scale))
        face = the_one_face(intake.image)
    return intake, face


def withheld_metrics(metrics: list[Metric]) -> list[Withheld]:
    specs = gate_specs()
    out = []
    for metric in metrics:
        if metric.value is not None:
            continue
        if metric.limited_by:
            reasons = "; ".join(f"{g}: {specs[g].advice}" for g in metric.limited_by)
            out.append(Withheld(name=metric.name, kind="gate", reason=reasons))
        else:
            regions = ", ".join(metric.regions_used) or "any region"
            out.append(
                Withheld(
                    name=metric.name,
                    kind="insufficient_data",
                    reason=f"too little clear skin in {regions} "
                    "(hair, glasses, shadow or highlights cover it)",
                )
            )
    return out


def analyze(data: bytes, answers: Answers | None = None) -> Analysis:
    """Analyse one face photo. Raises `ImageRejected` (with a code and retake advice) when it cannot.

    The same as `report_on_face(*locate_face(data, open_photo(data)), answers)`, the three stages."""
    intake, face = decode_with_face(data)
    return report_on_face(intake, face, answers)


def report_on_face(intake: IntakeResult, face: Face, answers: Answers | None = None) -> Analysis:
    """Crop, gate and measure the face `locate_face` found, and assemble the report."""
    crop = face_crop(intake.image, face)
    masks = region_masks(crop)
    measurements = measure(np.asarray(intake.to_srgb(crop.image)), masks)
    original_face = face.scaled(1.0 / intake.scale, 1.0 / intake.scale)
    gates = evaluate_gates(intake.original_size, original_face, crop, measurements, masks)
    metrics = all_metrics(measurements, gates)
    shine = next(m for m in metrics if m.name == "shine")
    roll, yaw = head_pose(crop)
    x, y, w, h = original_face.box
    return Analysis(
        metrics=metrics,
        gates=gates,
        face=FaceInfo(
            score=round(face.score, 4),
            box=Box(x=round(x, 1), y=round(y, 1), width=round(w, 1), height=round(h, 1)),
            keypoints={
                k: Point(x=round(px, 1), y=round(py, 1)) for k, (px, py) in original_face.keypoints.items()
            },
            roll_deg=round(roll, 1),
            yaw_deg=round(yaw, 1),
        ),
        image=ImageInfo(
            format=intake.format,
            width=intake.original_size[0],
            height=intake.original_size[1],
            icc=intake.icc,
            icc_profile=intake.icc_profile_name,
            metadata_removed=list(intake.metadata_removed),
            analysed_scale=round(intake.scale, 4),
        ),
        skin_type=infer_skin_type(answers, shine),
        withheld=[*refusals(), *withheld_metrics(metrics)],
        notice=NOTICE,
        models=model_infos(),
    )
