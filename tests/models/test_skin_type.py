"""The questionnaire decides skin type; the photo only fills in oiliness when it was not answered."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shine_mcp.models.report import Metric
from shine_mcp.models.skin_type import Answers, infer_skin_type


def shine_metric(pattern: str) -> Metric:
    return Metric(
        name="shine",
        value=5.0,
        unit="%",
        confidence=0.9,
        regions_used=["forehead", "nose"],
        limited_by=[],
        explanation="",
        details={"pattern": pattern, "t_zone_percent": 5.0, "cheeks_percent": 0.5},
    )


@pytest.mark.parametrize(
    ("oiliness", "tightness", "expected"),
    [
        ("all_over", "none", "oily"),
        ("t_zone", "some", "combination"),
        ("none", "strong", "dry"),
        ("none", "none", "normal"),
    ],
)
def test_answers_alone_give_the_four_classic_types(oiliness: str, tightness: str, expected: str) -> None:
    answers = Answers.model_validate({"oiliness_by_midday": oiliness, "tightness_after_washing": tightness})
    assert infer_skin_type(answers, None).value == expected


def test_with_no_answers_the_photo_shine_pattern_is_used_and_flagged() -> None:
    result = infer_skin_type(None, shine_metric("all_over"))
    assert result.value == "oily"
    assert "photo alone" in result.explanation


def test_an_answer_beats_a_disagreeing_photo_and_the_disagreement_is_said() -> None:
    result = infer_skin_type(
        Answers(oiliness_by_midday="none", tightness_after_washing="strong"), shine_metric("all_over")
    )
    assert result.value == "dry"
    assert "differs from your answer" in result.explanation


def test_nothing_to_go_on_gives_no_type_and_asks_for_answers() -> None:
    result = infer_skin_type(None, None)
    assert result.value is None
    assert "oiliness_by_midday" in result.explanation


def test_unknown_answers_are_rejected_by_the_schema() -> None:
    with pytest.raises(ValidationError):
        Answers.model_validate({"oiliness_by_midday": "very"})
