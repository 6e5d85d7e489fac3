"""Controlled variations of a real photo move the metrics the way they should, or withhold them."""

from __future__ import annotations

import pytest
from PIL import Image

from shine_mcp.models import Analysis, ImageRejected, analyze

from .conftest import add_cheek_redness, add_highlights, blurred, encode, scaled_exposure


def test_the_unedited_portrait_reports_colour_redness_shine_and_texture(hopper_analysis: Analysis) -> None:
    for name in ("lab_l", "ita", "redness", "shine", "texture", "dark_spots"):
        assert hopper_analysis.metric(name).value is not None, name


def test_added_cheek_redness_raises_redness(hopper: Image.Image, hopper_analysis: Analysis) -> None:
    flushed = analyze(encode(add_cheek_redness(hopper, hopper_analysis)))
    before, after = hopper_analysis.metric("redness").value, flushed.metric("redness").value
    assert before is not None and after is not None
    assert after > before + 3.0


def test_added_specular_highlights_raise_shine(hopper: Image.Image, hopper_analysis: Analysis) -> None:
    shiny = analyze(encode(add_highlights(hopper, hopper_analysis)))
    before, after = hopper_analysis.metric("shine").value, shiny.metric("shine").value
    assert before is not None and after is not None
    assert after > before + 3.0


def test_blur_withholds_texture_and_says_why(hopper: Image.Image) -> None:
    result = analyze(encode(blurred(hopper, 3.0)))
    texture = result.metric("texture")
    assert texture.value is None
    assert "sharpness" in texture.limited_by
    assert not result.gate("sharpness").passed
    assert result.gate("sharpness").advice
    assert result.metric("lab_l").value is not None  # blur does not change average colour


def test_darkening_withholds_colour(hopper: Image.Image) -> None:
    result = analyze(encode(scaled_exposure(hopper, 0.08)))
    assert not result.gate("brightness").passed
    for name in ("lab_l", "lab_a", "lab_b", "ita", "redness"):
        assert result.metric(name).value is None, name
        assert "brightness" in result.metric(name).limited_by


def test_overexposure_clipping_withholds_colour(hopper: Image.Image) -> None:
    result = analyze(encode(scaled_exposure(hopper, 2.0)))
    assert not result.gate("clipping").passed
    assert result.metric("ita").value is None
    assert "clipping" in result.metric("ita").limited_by


def test_a_crop_that_cuts_the_face_is_refused_with_the_edge_named(
    hopper: Image.Image, hopper_analysis: Analysis
) -> None:
    box = hopper_analysis.face.box
    cut = hopper.crop((int(box.x + box.width * 0.35), 0, hopper.width, hopper.height))
    with pytest.raises(ImageRejected) as caught:
        analyze(encode(cut))
    assert caught.value.code in ("face_cut_off", "no_face")
    if caught.value.code == "face_cut_off":
        assert "left edge" in caught.value.message
