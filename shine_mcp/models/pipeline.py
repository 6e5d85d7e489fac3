"""`analyze`: the one entry point from photo bytes to an `Analysis`, and the refusals it always carries."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from . import cores, illuminant, reference_card
from .assets import model_infos
from .errors import ImageRejected
from .face import INPUT_SIZE, Face, detect_faces, refine
from .intake import IntakeResult, open_photo
from .measure import measure
from .metrics import all_metrics, skin_lab
from .quality import evaluate_gates, flat_pixels, frame_bright_end, gate_specs, head_pose, is_drawing
from .regions import face_crop, region_masks
from .report import Analysis, Box, FaceInfo, ImageInfo, Metric, Point, Withheld
from .skin_type import Answers, infer_skin_type

NOTICE = (
    "Cosmetic guidance from one photo, not a medical assessment; see a dermatologist about any skin concern."
)
EDGE_TOLERANCE = 0.05  # BlazeFace boxes of whole faces near an edge overshoot it by a few percent
WANTED_FACE_WIDTH = 190.0  # decoded face width that lets the normalised crop shrink, never enlarge
# One person per photo: a second face this wide (share of the frame's width) is refused even when the
# whole-frame detection (128 px input) misses it; a second pass looks at tiles 0.6 of the frame's width.
# 0.10 less the detector's box jitter: a pasted face 10 % of the width measures 9.0-10.5 % in a tile.
SECOND_FACE_MIN_WIDTH = 0.08
SECOND_PASS_DETAIL = 2.0  # box-reduced first to no less than this many times the size the tiles need
# Tile side, share of the frame's WIDTH (what the 10 % is of): a face a tenth of the width is then 21 px
# of the detector's 128 px input; BlazeFace finds faces from 18 px (pasted real faces, every anchor
# offset) and misses most under 16. Tiles sized from the long side left such a face 16 px in a 3:4
# portrait and missed 19 of 24 (issue 16); a portrait now takes 2 x 3 tiles (six runs), a 4:3 landscape 2 x 2.
SECOND_PASS_TILE = 0.6
SECOND_PASS_OVERLAP = 0.2  # least overlap of neighbouring tiles, share of the frame's width
SECOND_PASS_SLACK = 0.02  # share of a tile step the overlap may fall short by, for whole-pixel tiles
SECOND_PASS_SCORE = 0.7  # a main face half covered by a second one scores ~0.75 in a tile; checked on the set
# When the whole-frame pass finds no face, the tiles are looked at too: a second face over the main one's
# forehead can hide both from it (5 of the 600 tenth-of-the-width second faces, all at the top of a 4:3
# frame). The covered face then scores 0.51-0.78 in a tile, so there a face of SECOND_PASS_SCORE with
# another of at least this is two people, not "no face". Costs the tiles' runs on refused photos only.
HIDDEN_FACE_SCORE = 0.5


@cache
def refusals() -> tuple[Withheld, ...]:
    data = json.loads((Path(__file__).parent / "refusals.json").read_text(encoding="utf-8"))
    return tuple(Withheld(name=r["name"], kind="refusal", reason=r["reason"]) for r in data["refusals"])


def main_face(image: Image.Image, tiles: Future[list[Face]]) -> Face:
    """The one face the whole-frame pass finds, wholly in the frame; otherwise a refusal with retake advice.

    None found, the tiles are looked at for two faces covering each other. One found may still have
    company the whole-frame pass missed: `tiles` (`tile_faces` of `image`, running beside) shows it, and
    a face cut off at an edge waits for it, as a second person is the first thing to say."""
    faces = detect_faces(image)
    if not faces:
        hidden = other_faces(image, None, HIDDEN_FACE_SCORE)
        if len(hidden) > 1 and max(f.score for f in hidden) >= SECOND_PASS_SCORE:
            raise ImageRejected(
                "multiple_faces",
                f"{len(hidden)} faces found, one partly covering another: Shine analyses one person per "
                "photo, so take a photo of your face alone",
            )
        raise ImageRejected(
            "no_face",
            "no face found: take a front-facing photo in even light, with your whole face filling "
            "about a third of the frame",
        )
    if len(faces) > 1:
        refuse_company(faces[1:])
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
        refuse_company(apart(tiles.result(), face))
        where = " and ".join(edges)
        raise ImageRejected(
            "face_cut_off",
            f"face cut off at the {where} edge{'s' if len(edges) > 1 else ''}: step back or re-frame so your "
            "whole face is in the photo",
        )
    return face


def refuse_company(others: list[Face]) -> None:
    """Refuse the photo when any face besides the one being analysed was found."""
    if others:
        raise ImageRejected(
            "multiple_faces",
            f"{len(others) + 1} faces found: Shine analyses one person per photo, so crop the photo to one face",
        )


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """True when the centre of one box lies inside the other (one face seen twice)."""
    for (x, y, w, h), (ox, oy, ow, oh) in ((a, b), (b, a)):
        cx, cy = x + w / 2, y + h / 2
        if ox <= cx <= ox + ow and oy <= cy <= oy + oh:
            return True
    return False


def second_pass_tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(left, top, right, bottom) of the overlapping square tiles `other_faces` looks at: each
    SECOND_PASS_TILE of the width (no taller than the frame), neighbours overlapping by at least
    SECOND_PASS_OVERLAP of the width (less SECOND_PASS_SLACK of a step, so that rounding to whole pixels
    never adds a row of tiles)."""
    side = max(1, min(round(SECOND_PASS_TILE * width), height))
    overlap = min(SECOND_PASS_OVERLAP * width, side / 2)

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        count = math.ceil((length - side) / (side - overlap) - SECOND_PASS_SLACK) + 1
        return [round(i * (length - side) / (count - 1)) for i in range(count)]

    return [
        (left, top, min(width, left + side), min(height, top + side))
        for top in starts(height)
        for left in starts(width)
    ]


def other_faces(image: Image.Image, main: Face | None, score: float = SECOND_PASS_SCORE) -> list[Face]:
    """Faces at least SECOND_FACE_MIN_WIDTH of the frame wide, scoring `score` or more, that the
    whole-frame pass missed (other than `main`, the face it found, if any): `apart` of `tile_faces`."""
    return apart(tile_faces(image, score), main)


def tile_faces(image: Image.Image, score: float = SECOND_PASS_SCORE) -> list[Face]:
    """Every face at least SECOND_FACE_MIN_WIDTH of the frame wide, scoring `score` or more, in any tile,
    tile by tile, the same face as often as tiles show it.

    The detector sees the frame shrunk to 128 px, where a face a tenth of the frame wide is ~13 px and
    easily missed; here it looks again at overlapping square tiles 0.6 of the frame's width (2 x 2 for
    a 4:3 landscape, 2 x 3 for a 3:4 portrait), where such a face is 21 px. Tiles overlap by at least a
    fifth of the width, so a face up to that size lies whole in one of them; larger faces the
    whole-frame pass already sees (19 px and more in a portrait)."""
    tiles = second_pass_tiles(image.width, image.height)
    # The frame is shrunk once so that a tile is the detector's input size, and the tiles are cut from
    # that: one resize instead of one per tile (six on a portrait), which cost as much as the tiles' runs.
    shrink = INPUT_SIZE / max(tiles[0][2] - tiles[0][0], 1)
    small = image.resize(
        (max(INPUT_SIZE, round(image.width * shrink)), max(INPUT_SIZE, round(image.height * shrink))),
        Image.Resampling.BILINEAR,
        reducing_gap=SECOND_PASS_DETAIL,
    )
    sx, sy = image.width / small.width, image.height / small.height
    found: list[Face] = []
    for tile_left, tile_top, _, _ in tiles:
        left = max(0, min(round(tile_left * shrink), small.width - INPUT_SIZE))
        top = max(0, min(round(tile_top * shrink), small.height - INPUT_SIZE))
        for face in detect_faces(small.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE)), score):
            x, y, w, h = face.box
            moved = Face(
                face.score,
                ((x + left) * sx, (y + top) * sy, w * sx, h * sy),
                {k: ((px + left) * sx, (py + top) * sy) for k, (px, py) in face.keypoints.items()},
            )
            if moved.box[2] >= SECOND_FACE_MIN_WIDTH * image.width:
                found.append(moved)
    return found


def apart(candidates: list[Face], main: Face | None) -> list[Face]:
    """The tiles' faces other than `main` and other than each other, in the tiles' order: a face whose
    box's centre lies in `main`'s or in one already kept (or holds theirs) is the same face seen again."""
    found: list[Face] = []
    for face in candidates:
        if (main is not None and _overlaps(face.box, main.box)) or any(
            _overlaps(face.box, f.box) for f in found
        ):
            continue
        found.append(face)
    return found


Result = TypeVar("Result")


def beside(work: Callable[[], Result]) -> Future[Result]:
    """Run `work` on a thread of its own when a core is free, and return its future: the tiled second-face
    pass overlaps the measuring (onnxruntime, Pillow and numpy release the GIL), so on two cores its ~15 ms
    of detector runs no longer add to an analysis (issue 16). When every core is analysing already, `work`
    runs here and now (`cores`). A thread per analysis rather than a shared pool: nothing queues behind
    another shopper's photo, and a forked worker process inherits no dead pool threads."""
    future: Future[Result] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as exc:  # handed to whoever waits on the future, raised there
            future.set_exception(exc)

    if not cores.ANALYSIS.take_spare():
        run()
        return future

    def on_spare_core() -> None:
        try:
            run()
        finally:
            cores.ANALYSIS.give_back()

    try:
        threading.Thread(target=on_spare_core, name="shine-second-face", daemon=True).start()
    except RuntimeError:  # no thread to be had (the process is at its limit): the work runs here
        cores.ANALYSIS.give_back()
        run()
    return future


@dataclass(frozen=True)
class LocatedFace:
    """`locate_face`'s result: the decode to measure, the one face in it, and the search for anybody else
    in the photo, still running. `report_on_face` waits for that search and refuses the photo if it found
    someone: no report is returned before the photo is known to show one person."""

    intake: IntakeResult
    face: Face
    tiles: Future[list[Face]]  # `tile_faces` of the first decode
    found: Face  # the whole-frame pass's face, in the first decode's pixels

    def refuse_company(self) -> None:
        refuse_company(apart(self.tiles.result(), self.found))


def decode_with_face(data: bytes) -> LocatedFace:
    """Decode small, find the face, and decode again larger only if the face came out too small."""
    return locate_face(data, open_photo(data))


def locate_face(data: bytes, intake: IntakeResult) -> LocatedFace:
    """The face in a first decode of `data`; decodes again larger only if the face came out too small.

    A stage of its own so a caller (the MCP tool) can report progress and check for cancellation
    between decoding, finding the face and measuring. The tiled search for a second face starts here and
    runs on while the face is found, refined, decoded larger and measured."""
    with cores.ANALYSIS.busy():
        first = intake.image
        tiles = beside(lambda: tile_faces(first))  # from the start: it needs the frame, not the face
        found = main_face(first, tiles)
        # the regions are placed from the keypoints: measure them again on the face alone (`refine`)
        face = refine(first, found)
        if intake.scale < 1.0 and face.box[2] < WANTED_FACE_WIDTH:
            wanted_scale = min(1.0, WANTED_FACE_WIDTH / (face.box[2] / intake.scale))
            try:
                intake = open_photo(data, min_short_side=math.ceil(min(intake.original_size) * wanted_scale))
            except BaseException:
                refuse_company(apart(tiles.result(), found))  # two people is the first thing to say
                raise
            # The detector sees every decode shrunk to the same 128 px, so finding the face again in the
            # larger one would cost a detector run and a resize of megapixels to learn nothing new.
            face = face.scaled(intake.image.width / first.width, intake.image.height / first.height)
        return LocatedFace(intake, face, tiles, found)


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

    The same as `report_on_face(locate_face(data, open_photo(data)), answers)`, the three stages."""
    return report_on_face(decode_with_face(data), answers)


def report_on_face(located: LocatedFace, answers: Answers | None = None) -> Analysis:
    """Crop, gate and measure the face `locate_face` found, and assemble the report, once the photo is
    known to show nobody else (a second person is refused before any other reason to refuse)."""
    with cores.ANALYSIS.busy():
        try:
            analysis = measured(located.intake, located.face, answers)
        except BaseException:
            located.refuse_company()
            raise
        located.refuse_company()
        return analysis


def measured(intake: IntakeResult, face: Face, answers: Answers | None) -> Analysis:
    """The report on `face`; `report_on_face` is the stage, which also settles the second-face search."""
    crop = face_crop(intake.image, face)
    masks = region_masks(crop)
    srgb = np.asarray(intake.to_srgb(crop.image))
    measurements = measure(srgb, masks)
    flat = flat_pixels(measurements)  # the drawing check and the occlusion gate both need it
    if is_drawing(measurements, masks, flat):
        raise ImageRejected(
            "drawing",
            "this looks like a drawing or a cartoon, not a photo: Shine measures real skin, so send a "
            "photo of your face taken with a camera",
        )
    original_face = face.scaled(1.0 / intake.scale, 1.0 / intake.scale)
    frame_bright = frame_bright_end(intake.image)
    skin = skin_lab(measurements)
    light = illuminant.estimate(crop, measurements.lab, skin) if skin else illuminant.NO_REFERENCE
    # a white paper or grey card held beside the face is a known-neutral reference: it wins over the eyes
    held = reference_card.find(intake.image, face.box, skin, light, intake.to_srgb) if skin else None
    if held is not None:  # measured again under daylight: which pixels are highlights depends on the light
        measurements = measure(reference_card.corrected(srgb, held), masks)
        flat = flat_pixels(measurements)
        light = held
    gates = evaluate_gates(
        intake.original_size, original_face, crop, measurements, masks, frame_bright, light, flat
    )
    metrics = all_metrics(measurements, gates, light)
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
