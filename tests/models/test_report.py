"""An analysis is self-describing JSON: every metric, gate, refusal, notice and model is in it."""

from __future__ import annotations

import json

from shine_mcp.models import NOTICE, Analysis, Answers, analyze

REFUSED = {"diagnosis", "skin_age", "fitzpatrick_phototype", "hydration", "sebum", "skin_health_score"}


def test_the_report_round_trips_through_json(hopper_analysis: Analysis) -> None:
    text = hopper_analysis.model_dump_json()
    assert Analysis.model_validate_json(text) == hopper_analysis
    assert json.loads(text)["notice"] == NOTICE


def test_every_report_carries_the_notice_refusals_and_model_hashes(hopper_analysis: Analysis) -> None:
    assert "not a medical" in hopper_analysis.notice
    refusals = {w.name for w in hopper_analysis.withheld if w.kind == "refusal"}
    assert refusals == REFUSED
    assert {m.name for m in hopper_analysis.models} == {"blazeface_front_128", "skin_metrics"}
    assert all(len(m.sha256) == 64 for m in hopper_analysis.models)


def test_colour_of_a_real_portrait_is_in_the_range_of_human_skin(hopper_analysis: Analysis) -> None:
    lab_l, lab_b = hopper_analysis.metric("lab_l"), hopper_analysis.metric("lab_b")
    ita = hopper_analysis.metric("ita")
    assert lab_l.value is not None and 30 < lab_l.value < 80
    assert lab_b.value is not None and 5 < lab_b.value < 40
    categories = {"very_light", "light", "intermediate", "tan", "brown", "dark"}
    if "category" in ita.details:
        assert ita.details["category"] in categories
    else:  # the lighting range spans a boundary: both ends named, lighter first
        lighter, darker = str(ita.details["category_range"]).split(" to ")
        assert {lighter, darker} <= categories
    assert 0.0 < ita.confidence <= 1.0
    assert set(ita.regions_used) <= {"forehead", "right_cheek", "left_cheek", "chin"}


def test_a_small_face_withholds_texture_and_says_so(astronaut_bytes: bytes) -> None:
    result = analyze(astronaut_bytes)
    texture = result.metric("texture")
    assert texture.value is None and "face_size" in texture.limited_by
    withheld = {w.name: w for w in result.withheld}
    assert withheld["texture"].kind == "gate"
    assert "closer" in withheld["texture"].reason
    assert result.metric("ita").value is not None  # colour needs far fewer pixels than texture


def test_every_failed_gate_has_advice_and_every_passed_gate_none(astronaut_bytes: bytes) -> None:
    for gate in analyze(astronaut_bytes).gates:
        assert (gate.advice is None) == gate.passed


def test_the_skin_type_names_the_evidence_it_used(hopper_bytes: bytes) -> None:
    answers = Answers(
        oiliness_by_midday="t_zone", tightness_after_washing="none", reactions_to_products="often"
    )
    skin = analyze(hopper_bytes, answers).skin_type
    assert skin.value == "combination"
    assert skin.sensitive is True
    assert "answer: oiliness_by_midday=t_zone" in skin.evidence
    assert any(e.startswith("photo: shine pattern") for e in skin.evidence)
