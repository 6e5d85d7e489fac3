"""Skin analysis on real faces nobody here photographed (tests/skin/validation/manifest.json), and on
controlled variants of them: fair exposure judgement, non-skin withheld, honest colour, one person.

The photos are fetched into a cache on first use (scripts/fetch_validation_faces.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from shine_mcp.models import Analysis, ImageRejected, analyze
from shine_mcp.models.colour import classify_ita
from shine_mcp.models.intake import open_photo
from shine_mcp.models.regions import EYE_DISTANCE

from .validation import faces as V


def run(image: Image.Image, quality: int = 92) -> Analysis:
    return analyze(V.encode(image, quality))


@pytest.fixture(scope="module")
def one_faces() -> tuple[V.OneFace, ...]:
    return V.one_faces()


@pytest.fixture(scope="module")
def frontal(one_faces: tuple[V.OneFace, ...]) -> V.OneFace:
    """A well-lit, frontal face from the set, its colour measurable."""
    return next(f for f in one_faces if f.id == "faceapi-6#4")


def test_the_set_holds_at_least_30_real_faces_and_the_detector_finds_them(
    one_faces: tuple[V.OneFace, ...],
) -> None:
    assert len(one_faces) >= 30
    found = 0
    for face in one_faces:
        try:
            run(face.image)
            found += 1
        except ImageRejected as refused:
            assert refused.code in ("no_face", "face_cut_off"), (face.id, refused.code)
    assert found >= 0.95 * len(one_faces)


def test_every_frontal_face_of_the_set_is_found_and_a_face_seen_from_the_side_is_told_to_face_the_camera(
    one_faces: tuple[V.OneFace, ...],
) -> None:
    """Issue 16's detection target counts frontal faces wider than 15 % of the frame (every cut-out's face
    is ~30 %). The one face the detector misses, faceapi-2#1, is a profile (the manifest says so): the
    detector is BlazeFace's frontal model, and the shopper is told to take a front-facing photo."""
    frontal = [f for f in one_faces if f.frontal]
    assert len(frontal) >= 29
    missed = []
    for face in frontal:
        try:
            run(face.image)
        except ImageRejected as refused:
            if refused.code in ("no_face", "face_cut_off"):
                missed.append(face.id)
    assert missed == []
    for face in (f for f in one_faces if not f.frontal):
        with pytest.raises(ImageRejected) as refused:
            run(face.image)
        assert refused.value.code == "no_face" and "front-facing" in refused.value.message


@pytest.mark.parametrize("tone", [9, 10])
def test_a_well_exposed_face_recoloured_to_monk_9_or_10_is_not_refused_for_exposure(
    frontal: V.OneFace, tone: int
) -> None:
    dark = V.recolour(frontal.image, frontal.box, V.monk_lab(tone))
    result = run(dark)
    assert result.gate("brightness").passed, result.gate("brightness")
    lab_l = result.metric("lab_l").value
    assert result.metric("ita").value is not None and lab_l is not None
    assert lab_l < 35.0  # the skin really is dark: the photo was not judged by it


@pytest.mark.parametrize(("face_id", "tone"), [("faceapi-3#1", 8), ("faceapi-3#1", 10), ("faceapi-1#3", 10)])
def test_a_face_recoloured_to_a_dark_monk_tone_keeps_its_colour_and_light_measurable(
    one_faces: tuple[V.OneFace, ...], face_id: str, tone: int
) -> None:
    """The recolour must change all of the face's skin, as a darker-skinned person's photo would show
    it: the lit side of a side-lit face and a shiny forehead were left in their own colour, which the
    occlusion and light checks then (rightly) read as a cover, so ITA was withheld more often at Monk
    7-10 than at 1-6 (17 % against 8-11 %, issue 16)."""
    face = next(f for f in one_faces if f.id == face_id)
    result = run(V.recolour_exposed(face.image, face.box, V.monk_lab(tone)))
    assert result.gate("occlusion").passed
    assert result.gate("light").passed
    assert result.metric("ita").value is not None


def test_ita_is_withheld_as_often_on_dark_as_on_light_recolours_of_the_whole_set(
    one_faces: tuple[V.OneFace, ...],
) -> None:
    """Issue 16: within 5 points across Monk 1-3, 4-6 and 7-10 (every face the analysis accepts, each
    recoloured to every tone of the group). It was 11 / 8 / 17 %, the dark recolours carrying pale
    patches the recolour had left in the face's own colour."""
    groups = {"Monk 1-3": (1, 2, 3), "Monk 4-6": (4, 5, 6), "Monk 7-10": (7, 8, 9, 10)}
    found = [f for f in one_faces if f.frontal and attempt(f.image) is not None]
    withheld = {}
    for group, tones in groups.items():
        done = [
            r
            for f in found
            for t in tones
            if (r := attempt(V.recolour_exposed(f.image, f.box, V.monk_lab(t)))) is not None
        ]
        withheld[group] = sum(r.metric("ita").value is None for r in done) / len(done)
    assert max(withheld.values()) - min(withheld.values()) <= 0.05, withheld


def test_a_whole_photo_five_times_underexposed_is_still_refused_for_exposure(frontal: V.OneFace) -> None:
    result = run(V.exposure(frontal.image, 0.05))
    assert not result.gate("brightness").passed
    assert "brightness" in result.metric("ita").limited_by


def test_shine_is_withheld_on_a_greyscale_photo(frontal: V.OneFace) -> None:
    result = run(V.greyscale(frontal.image))
    assert not result.gate("colour").passed
    shine = result.metric("shine")
    assert shine.value is None and "colour" in shine.limited_by
    assert result.skin_type.value is None or not any("shine" in e for e in result.skin_type.evidence)


def test_a_blue_light_withholds_colour_and_says_why(frontal: V.OneFace) -> None:
    result = run(V.tinted(frontal.image, (0.55, 0.8, 1.6)))
    assert not result.gate("skin_colour").passed
    for name in ("ita", "lab_b", "hue_angle", "redness"):
        metric = result.metric(name)
        assert metric.value is None and "skin_colour" in metric.limited_by, name
    reason = next(w.reason for w in result.withheld if w.name == "ita")
    assert "light" in reason


def test_the_blue_lit_face_of_the_set_has_no_ita(one_faces: tuple[V.OneFace, ...]) -> None:
    """faceapi-3#3 measured b* = -24, ITA 143 degrees 'very light' at confidence 1.0 before."""
    face = next(f for f in one_faces if f.id == "faceapi-3#3")
    assert run(face.image).metric("ita").value is None


def test_a_white_card_over_half_the_face_withholds_colour(frontal: V.OneFace) -> None:
    result = run(V.white_card(frontal.image, frontal.box))
    assert not result.gate("occlusion").passed
    assert result.metric("ita").value is None
    assert "occlusion" in result.metric("ita").limited_by


def test_a_flat_skin_coloured_patch_over_a_cheek_withholds_colour(frontal: V.OneFace) -> None:
    result = run(V.skin_patch(frontal.image, frontal.box))
    assert not result.gate("occlusion").passed
    assert result.metric("ita").value is None


def test_unoccluded_real_faces_pass_the_occlusion_and_skin_colour_checks(
    one_faces: tuple[V.OneFace, ...],
) -> None:
    passed = total = 0
    for face in one_faces:
        try:
            result = run(face.image)
        except ImageRejected:
            continue
        if face.id == "faceapi-3#3":  # the blue-lit face
            continue
        total += 1
        passed += result.gate("occlusion").passed and result.gate("skin_colour").passed
    # 25 of 28: faceapi-3#2 (purple bar light), insightface-t1#3, and faceapi-4#3, turned 35 degrees,
    # whose chin region falls on the dark background beside the jaw (a region over something that is
    # not skin is withheld, as it should be)
    assert passed >= 0.89 * total, (passed, total)


def test_no_colour_metric_is_fully_confident_without_a_colour_reference(
    one_faces: tuple[V.OneFace, ...],
) -> None:
    for face in one_faces[:12]:
        try:
            result = run(face.image)
        except ImageRejected:
            continue
        for name in ("lab_l", "lab_a", "lab_b", "hue_angle", "ita"):
            assert result.metric(name).confidence <= 0.5, (face.id, name)


def test_ita_is_a_range_and_a_category_is_given_only_when_the_range_sits_in_one(
    one_faces: tuple[V.OneFace, ...],
) -> None:
    seen_without = 0
    for face in one_faces:
        try:
            ita = run(face.image).metric("ita")
        except ImageRejected:
            continue
        if ita.value is None:
            continue
        low, high = float(ita.details["ita_low"]), float(ita.details["ita_high"])
        assert low < ita.value < high
        assert high - low >= 4.0  # a camera's white balance alone moves ITA by more than this
        same = classify_ita(low).category == classify_ita(high).category
        assert ("category" in ita.details) == same, (face.id, ita.details)
        if "category" in ita.details:
            assert ita.details["category"] == classify_ita(ita.value).category
        else:
            seen_without += 1
            assert "to" in str(ita.details["category_range"])
    assert seen_without > 0


def test_the_ita_ranges_of_a_face_and_its_white_balance_casts_overlap_across_the_set(
    one_faces: tuple[V.OneFace, ...],
) -> None:
    """Issue 16: the same person in different photos gets overlapping ITA ranges. Over every frontal face
    of the set and 5000-8000 K lights under a daylight white balance (once one face, which its highlight
    rules now read differently under a cast, sat 0.4 degrees outside its range at 7500 K)."""
    pairs = apart = 0
    for face in (f for f in one_faces if f.frontal):
        try:
            base = run(face.image).metric("ita")
        except ImageRejected:
            continue
        if base.value is None:
            continue
        for kelvin in (5000, 5500, 7500, 8000):
            try:
                cast = run(V.white_balance(face.image, kelvin)).metric("ita")
            except ImageRejected:
                continue
            if cast.value is None:
                continue
            pairs += 1
            low, high = float(base.details["ita_low"]), float(base.details["ita_high"])
            apart += float(cast.details["ita_low"]) > high or float(cast.details["ita_high"]) < low
    assert pairs >= 60
    assert apart <= 0.05 * pairs, (apart, pairs)


@pytest.mark.parametrize("fraction", [0.12, 0.2])
def test_a_second_face_is_refused_even_when_the_main_detector_misses_it(
    one_faces: tuple[V.OneFace, ...], fraction: float
) -> None:
    main = next(f for f in one_faces if f.id == "grace-hopper#1")
    other = next(f for f in one_faces if f.id == "faceapi-6#2")
    photo = V.second_face(main.image, other, fraction)
    with pytest.raises(ImageRejected) as refused:
        run(photo)
    assert refused.value.code == "multiple_faces"
    assert "one face" in refused.value.message


@pytest.mark.parametrize("shape", ["portrait", "landscape"])
@pytest.mark.parametrize("corner", ["left", "right"])
def test_a_twelve_percent_second_face_is_refused_in_portrait_and_landscape_photos(
    one_faces: tuple[V.OneFace, ...], shape: str, corner: str
) -> None:
    """A 4:3 frame is searched in 2 x 2 tiles: a face of 12 % of its width, in either top corner, is
    found even where the whole-frame pass sees it at 10-13 px."""
    main = next(f for f in one_faces if f.id == "grace-hopper#1")
    other = next(f for f in one_faces if f.id == "faceapi-6#2")
    side = main.image.width
    size = (side, side * 4 // 3) if shape == "portrait" else (side * 4 // 3, side)
    frame = Image.new("RGB", size, (118, 110, 102))
    frame.paste(main.image, ((size[0] - side) // 2, size[1] - side))
    with pytest.raises(ImageRejected) as refused:
        run(V.second_face(frame, other, 0.12, corner))
    assert refused.value.code == "multiple_faces"


@pytest.mark.parametrize("shape", sorted(V.FRAME_SHAPES))
def test_a_second_face_a_tenth_of_the_frame_wide_is_refused_at_every_corner_and_edge(
    one_faces: tuple[V.OneFace, ...], shape: str
) -> None:
    """Issue 16: 100 % refused when a second face is >= 10 % of the frame's width. In a 3:4 portrait
    such a face is only 16 px of the detector's input when the tiles are sized from the long side."""
    other = next(f for f in one_faces if f.id == "faceapi-6#2")
    accepted = []
    for main_id in ("grace-hopper#1", "faceapi-6#4", "astronaut#1"):
        frame = V.framed(next(f for f in one_faces if f.id == main_id), shape)
        for position in V.POSITIONS:
            try:
                run(V.second_face_at(frame, other, 0.10, position))
                accepted.append((main_id, position))
            except ImageRejected as refused:
                assert refused.code == "multiple_faces", (main_id, position, refused.code)
    assert accepted == []


@pytest.mark.parametrize("main_id", ["faceapi-2#2", "faceapi-4#3", "insightface-t1#5"])
def test_a_second_face_over_the_main_face_s_forehead_is_refused_as_multiple_faces(
    one_faces: tuple[V.OneFace, ...], main_id: str
) -> None:
    """A face a tenth of the frame wide pasted at the top middle of a 4:3 frame covers the main face's
    forehead: the whole-frame pass then finds no face at all, and the photo was refused as 'no face
    found' (5 of the 600 second-face photos) although it shows two people."""
    other = next(f for f in one_faces if f.id == "faceapi-6#2")
    frame = V.framed(next(f for f in one_faces if f.id == main_id), "landscape")
    with pytest.raises(ImageRejected) as refused:
        run(V.second_face_at(frame, other, 0.10, "top"))
    assert refused.value.code == "multiple_faces"


def test_every_group_photo_of_the_set_is_refused(one_faces: tuple[V.OneFace, ...]) -> None:
    for photo in V.photos():
        if len(photo.faces) < 2:
            continue
        with pytest.raises(ImageRejected) as refused:
            run(photo.image)
        assert refused.value.code in ("multiple_faces", "no_face"), photo.id


def test_single_faces_of_the_set_are_not_refused_as_groups(one_faces: tuple[V.OneFace, ...]) -> None:
    for face in one_faces:
        for image in (face.image, V.mirror(face.image)):
            try:
                run(image)
            except ImageRejected as refused:
                assert refused.code != "multiple_faces", face.id


def test_same_photo_variants_report_no_significant_change(frontal: V.OneFace) -> None:
    from shine_mcp.models.compare import compare

    base = run(frontal.image)
    variants = [
        V.recrop(frontal.image, frontal.box, 2.6, (0.1, 0.0)),
        V.mirror(frontal.image),
        V.rotate(frontal.image, 8.0),
        V.jpeg(frontal.image, 60),
    ]
    for image in variants:
        result = compare(base, run(image))
        significant = [c.name for c in result.changes if c.verdict in ("increased", "decreased")]
        assert significant == [], significant


def lab_of(result: Analysis) -> np.ndarray:
    return np.array([result.metric(n).value for n in ("lab_l", "lab_a", "lab_b")], dtype=float)


def test_monk_recolours_move_the_measured_colour_by_the_applied_shift(frontal: V.OneFace) -> None:
    """A recolour shifts every skin pixel by one Lab offset; the measured mean must follow it."""
    base = lab_of(run(frontal.image, quality=95))
    for tone in (6, 7, 8):
        shift = V.monk_lab(tone) - V.skin_median(frontal.image, frontal.box)
        recoloured = lab_of(run(V.recolour(frontal.image, frontal.box, V.monk_lab(tone)), quality=95))
        assert np.linalg.norm(recoloured - base - shift) < 3.0, (tone, recoloured - base, shift)


@pytest.fixture(scope="module")
def same_photo_pairs() -> tuple[tuple[Analysis, Analysis], ...]:
    from scripts.validate_analysis import same_photo_pairs as pairs

    return pairs()


def test_the_real_face_retake_noise_in_the_repeatability_file_is_what_the_set_measures(
    same_photo_pairs: tuple[tuple[Analysis, Analysis], ...],
) -> None:
    """Re-measure skin_repeatability.json's `real_faces_*` figures: if the pipeline drifts, update them."""
    from scripts.validate_analysis import retake_noise
    from shine_mcp.models.compare import repeatability

    measured = retake_noise(same_photo_pairs)
    specs = repeatability()["metrics"]
    checked = 0
    for name, spec in specs.items():
        if "real_faces_rms" not in spec:
            continue
        rms, confidence, _ = measured[name]
        assert spec["real_faces_rms"] == pytest.approx(rms, abs=0.02 + 0.15 * rms), name
        assert spec["real_faces_confidence"] == pytest.approx(confidence, abs=0.05), name
        checked += 1
    assert checked >= 5  # colour at least, the metrics most real faces report


def test_no_same_photo_variant_of_the_set_reports_a_texture_or_dark_spot_change(
    same_photo_pairs: tuple[tuple[Analysis, Analysis], ...],
) -> None:
    """Texture and dark spots are reported on the faces the sharpness check passes; their noise in
    skin_repeatability.json is measured on these pairs, so none of them may read as a change."""
    from shine_mcp.models.compare import compare

    compared = 0
    for before, after in same_photo_pairs:
        for change in compare(before, after).changes:
            if change.name in ("texture", "dark_spots") and change.change is not None:
                compared += 1
                assert change.verdict == "no_meaningful_change", (change.name, change.before, change.after)
    assert compared >= 50


def test_same_photo_variants_of_the_set_rarely_report_a_significant_change(
    same_photo_pairs: tuple[tuple[Analysis, Analysis], ...],
) -> None:
    from shine_mcp.models.compare import compare

    flagged = sum(
        any(c.verdict in ("increased", "decreased") for c in compare(before, after).changes)
        for before, after in same_photo_pairs
    )
    assert len(same_photo_pairs) >= 100
    # issue 16's target is 5 %; 6.3 % (11/174) before the keypoints were measured again on the face
    # alone and ITA's noise was carried through its formula; 1-2 of 174 since.
    assert flagged <= 0.05 * len(same_photo_pairs), (flagged, len(same_photo_pairs))


def test_same_photo_variants_of_the_set_move_ita_shine_and_spots_within_the_targets(
    same_photo_pairs: tuple[tuple[Analysis, Analysis], ...],
) -> None:
    """Issue 16: a re-crop, mirror, +-10 degree tilt or re-compression of one photo moves ITA by sd <= 1.5
    degrees, shine by <= 2 pp and the dark-spot count by <= 1 (RMS over the set; 2.67, 3.55 and 1.15
    while the regions were placed from the whole-frame pass's keypoints)."""
    from scripts.validate_analysis import retake_noise

    measured = retake_noise(same_photo_pairs)
    for name, target in (("shine", 2.0), ("dark_spots", 1.0)):
        rms, _, used = measured[name]
        assert used >= 25, name
        assert rms <= target, (name, rms)
    # ITA as reported, corrected for the light seen on the whites of the eyes where they show it: the
    # correction must not add more than the sclera's colour tells (1.75 with a window around each eye
    # 0.09 eye distances tall, where a keypoint a few pixels off decided whether any sclera was seen)
    changes = []
    for before, after in same_photo_pairs:
        b, a = before.metric("ita"), after.metric("ita")
        if b.value is not None and a.value is not None:
            changes.append(a.value - b.value)
    assert len(changes) >= 100
    assert math.sqrt(sum(c * c for c in changes) / len(changes)) <= 1.5


def test_a_mirrored_photo_gives_the_mirrored_keypoints(one_faces: tuple[V.OneFace, ...]) -> None:
    """A selfie sent mirrored is the same photo: the regions must land on the same skin, so the eyes,
    nose tip and mouth found on the mirror image, mirrored back, must sit where they are found on the
    photo (median over the set under 5 % of the eye distance; it was 8.7 % with the whole-frame pass's
    keypoints, up to 21 %)."""
    from shine_mcp.models.pipeline import locate_face

    swap = {
        "right_eye": "left_eye",
        "left_eye": "right_eye",
        "nose_tip": "nose_tip",
        "mouth_center": "mouth_center",
    }
    errors = []
    for face in one_faces:
        photo, mirror = V.encode(face.image), V.encode(V.mirror(face.image))
        try:
            located = locate_face(photo, open_photo(photo))
            mirrored = locate_face(mirror, open_photo(mirror)).face
            located.refuse_company()
        except ImageRejected:
            continue
        intake, found = located.intake, located.face
        (rx, ry), (lx, ly) = found.keypoints["right_eye"], found.keypoints["left_eye"]
        width = intake.image.width
        errors.append(
            max(
                math.hypot(
                    found.keypoints[k][0] - (width - mirrored.keypoints[m][0]),
                    found.keypoints[k][1] - mirrored.keypoints[m][1],
                )
                for k, m in swap.items()
            )
            / math.hypot(lx - rx, ly - ry)
        )
    assert len(errors) >= 25
    assert float(np.median(errors)) < 0.05, sorted(errors)


@dataclass(frozen=True)
class Focus:
    """One face of the set as sent, blurred, blurred with sensor noise, and with sensor noise alone."""

    id: str
    sharp: Analysis
    blurred: Analysis | None
    blurred_noisy: Analysis | None
    noisy: Analysis | None
    very_blurred: tuple[Analysis | None, Analysis | None]  # BLUR_SIGMA_FAR, without and with noise


def attempt(image: Image.Image) -> Analysis | None:
    try:
        return run(image)
    except ImageRejected:
        return None


@pytest.fixture(scope="module")
def focus(one_faces: tuple[V.OneFace, ...]) -> tuple[Focus, ...]:
    """Blurs of BLUR_SIGMA pixels of the normalised crop (80 px between the eyes), scaled to each photo."""
    out = []
    for face in one_faces:
        sharp = attempt(face.image)
        if sharp is None:
            continue
        eyes = sharp.face.keypoints
        scale = math.hypot(eyes["left_eye"].x - eyes["right_eye"].x, eyes["left_eye"].y - eyes["right_eye"].y)
        blurred = V.blur(face.image, BLUR_SIGMA * scale / EYE_DISTANCE)
        very = V.blur(face.image, BLUR_SIGMA_FAR * scale / EYE_DISTANCE)
        out.append(
            Focus(
                face.id,
                sharp,
                attempt(blurred),
                attempt(V.sensor_noise(blurred, NOISE_SD)),
                attempt(V.sensor_noise(face.image, NOISE_SD)),
                (attempt(very), attempt(V.sensor_noise(very, NOISE_SD))),
            )
        )
    return tuple(out)


BLUR_SIGMA = 2.0
BLUR_SIGMA_FAR = 3.0
NOISE_SD = 6.0


def in_focus(result: Analysis) -> bool:
    return result.gate("sharpness").passed


def test_sharp_real_faces_pass_the_sharpness_check_as_sent_and_with_sensor_noise(
    focus: tuple[Focus, ...],
) -> None:
    """The old check measured skin grain and refused every face of the set; edges judge focus."""
    assert len(focus) >= 25
    assert sum(in_focus(f.sharp) for f in focus) >= 0.9 * len(focus)
    for f in focus:
        if in_focus(f.sharp):
            assert f.noisy is not None, f.id
            # a face as sent within 0.2 px of the limit may cross it with noise (faceapi-5#3: 6.34 -> 6.37-6.51
            # over three noise seeds); any further from it must stay in focus
            limit = f.sharp.gate("sharpness").threshold
            assert in_focus(f.noisy) or f.sharp.gate("sharpness").measured > limit - 0.2, f.id


def test_a_real_face_blurred_by_two_crop_pixels_is_refused_as_out_of_focus(
    focus: tuple[Focus, ...],
) -> None:
    face = next(f for f in focus if f.id == "faceapi-6#1")
    assert in_focus(face.sharp)
    assert face.blurred is not None and not in_focus(face.blurred)
    for name in ("texture", "dark_spots"):
        metric = face.blurred.metric(name)
        assert metric.value is None and "sharpness" in metric.limited_by, name


def test_a_blur_of_two_crop_pixels_widens_every_face_s_edges_and_is_refused_on_most(
    focus: tuple[Focus, ...],
) -> None:
    """A sigma-2 blur adds 1.2-3.6 px (widths add in quadrature, so the sharpest faces widen most);
    measured 22 of 29 refused: faces already as soft as a sigma-2 blur when sent cannot be told apart
    from a blurred sharp face by one photo, and those keep passing."""
    blurred = [f for f in focus if f.blurred is not None]
    assert len(blurred) >= 0.9 * len(focus)
    for f in blurred:
        assert f.blurred is not None
        widened = f.blurred.gate("sharpness").measured - f.sharp.gate("sharpness").measured
        assert widened >= 1.0, (f.id, widened)
    assert sum(not in_focus(f.blurred) for f in blurred if f.blurred is not None) >= 0.7 * len(blurred)


def test_sensor_noise_does_not_rescue_a_blurred_face(focus: tuple[Focus, ...]) -> None:
    """Noise raised the old grain measure past its threshold; edge width barely moves."""
    for f in focus:
        if f.blurred is None or f.blurred_noisy is None:
            continue
        before, after = f.blurred.gate("sharpness").measured, f.blurred_noisy.gate("sharpness").measured
        # up to 0.7 px (astronaut#1): the noise also moves the keypoints, and the crop's scale with them
        assert abs(after - before) < 0.75, (f.id, before, after)
    face = next(f for f in focus if f.id == "faceapi-6#1")
    assert face.blurred_noisy is not None and not in_focus(face.blurred_noisy)


def test_a_blur_of_three_crop_pixels_is_refused_on_every_face_with_or_without_sensor_noise(
    focus: tuple[Focus, ...],
) -> None:
    """Measured 7.1 px at the least (the gate refuses above 6.5); the detector may lose a face this soft."""
    results = [r for f in focus for r in f.very_blurred if r is not None]
    assert len(results) >= 1.8 * len(focus)
    assert not any(in_focus(r) for r in results), [r.gate("sharpness").measured for r in results]
