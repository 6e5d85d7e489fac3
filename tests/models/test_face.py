"""BlazeFace finds exactly the faces that are there, where they are, and refuses everything else."""

from __future__ import annotations

import pytest
from PIL import Image

from shine_mcp.models import ImageRejected, analyze
from shine_mcp.models.face import anchors, detect_faces

from .conftest import ASTRONAUT, SKIMAGE_DATA, encode

# Eye centres marked by hand on the bundled photos (pixel coordinates), independent of the model.
HOPPER_EYES = {"right_eye": (224.0, 191.0), "left_eye": (309.0, 189.0)}
ASTRONAUT_EYES = {"right_eye": (204.0, 101.0), "left_eye": (246.0, 107.0)}


def test_the_model_has_896_anchors_in_two_layers() -> None:
    grid = anchors()
    assert grid.shape == (896, 2)
    assert grid.min() > 0 and grid.max() < 1


@pytest.mark.parametrize(
    ("path", "eyes"),
    [("hopper", HOPPER_EYES), (ASTRONAUT, ASTRONAUT_EYES)],
)
def test_one_face_is_found_with_its_box_around_the_marked_eyes(
    path: object, eyes: dict[str, tuple[float, float]], hopper: Image.Image
) -> None:
    image = hopper if path == "hopper" else Image.open(ASTRONAUT).convert("RGB")
    faces = detect_faces(image)
    assert len(faces) == 1
    face = faces[0]
    x, y, w, h = face.box
    for name, (ex, ey) in eyes.items():
        px, py = face.keypoints[name]
        assert abs(px - ex) < 0.1 * w and abs(py - ey) < 0.1 * w, name
        assert x < ex < x + w and y < ey < y + h
    eye_distance = abs(eyes["left_eye"][0] - eyes["right_eye"][0])
    assert 1.6 * eye_distance < w < 3.0 * eye_distance


def test_the_reported_box_is_in_original_pixels_when_the_jpeg_was_decoded_small(hopper: Image.Image) -> None:
    big = hopper.resize((hopper.width * 4, hopper.height * 4))
    result = analyze(encode(big, quality=90))
    assert result.image.analysed_scale < 1.0
    right = result.face.keypoints["right_eye"]
    assert abs(right.x - 4 * HOPPER_EYES["right_eye"][0]) < 40
    assert abs(right.y - 4 * HOPPER_EYES["right_eye"][1]) < 40


@pytest.mark.parametrize("name", ["coffee.png", "chelsea.png", "rocket.jpg"])
def test_real_photos_without_a_face_are_refused_with_advice(name: str) -> None:
    with pytest.raises(ImageRejected) as caught:
        analyze((SKIMAGE_DATA / name).read_bytes())
    assert caught.value.code == "no_face"
    assert "no face found" in caught.value.message


def test_two_faces_are_refused_with_the_count(hopper: Image.Image) -> None:
    pair = Image.new("RGB", (hopper.width * 2, hopper.height))
    pair.paste(hopper, (0, 0))
    pair.paste(hopper.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (hopper.width, 0))
    with pytest.raises(ImageRejected) as caught:
        analyze(encode(pair))
    assert caught.value.code == "multiple_faces"
    assert caught.value.message.startswith("2 faces")


def test_a_mirrored_selfie_is_still_one_face(hopper: Image.Image) -> None:
    assert len(detect_faces(hopper.transpose(Image.Transpose.FLIP_LEFT_RIGHT))) == 1
