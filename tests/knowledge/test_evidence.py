"""Evidence grades follow the rubric in docs/evidence.md, and every claim says what its grade rests on."""

from pathlib import Path
from typing import Any

import pytest

from shine_mcp.knowledge import Family, Ingredient, KnowledgeBase, load_knowledge, load_knowledge_from
from shine_mcp.knowledge.schema import COUNTED_STUDIES, highest_grade
from tests.knowledge.helpers import edit_json

RUBRIC = Path(__file__).parents[2] / "docs" / "evidence.md"
STUDY_TYPES = ["guideline", "meta_analysis", "rct", "open_label", "regulation", "review", "in_vitro"]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge()


def _claim(kb: KnowledgeBase, name: str, concern: str) -> Any:
    (claim,) = [c for c in kb.concern_claims(name) if c.concern == concern]
    return claim


@pytest.mark.parametrize(
    ("study_type", "n", "ceiling"),
    [
        ("guideline", None, "strong"),
        ("meta_analysis", 21, "strong"),
        ("meta_analysis", 1, "moderate"),
        ("rct", 2, "strong"),
        ("rct", 1, "moderate"),
        ("regulation", None, "moderate"),
        ("review", None, "moderate"),
        ("open_label", 3, "limited"),
        ("in_vitro", None, "limited"),
    ],
)
def test_the_rubric_caps_each_kind_of_evidence(study_type: Any, n: int | None, ceiling: str) -> None:
    assert highest_grade(study_type, n) == ceiling


def test_the_written_rubric_names_every_study_type_and_grade() -> None:
    text = RUBRIC.read_text("utf-8")
    for word in [*STUDY_TYPES, "strong", "moderate", "limited"]:
        assert f"`{word}`" in text or f"**{word}**" in text, word


def test_every_bundled_claim_has_a_basis_its_grade_does_not_exceed(kb: KnowledgeBase) -> None:
    rank = {"strong": 0, "moderate": 1, "limited": 2}
    items: list[Family | Ingredient] = [*kb.data.families, *kb.data.ingredients]
    claims = [claim for item in items for claim in item.concerns]
    assert len(claims) > 100
    for claim in claims:
        assert claim.basis.study_type in STUDY_TYPES
        if claim.basis.study_type in COUNTED_STUDIES:
            assert claim.basis.n is not None and claim.basis.n >= 1, claim
        assert rank[claim.evidence] >= rank[highest_grade(claim.basis.study_type, claim.basis.n)], claim


def test_strong_claims_rest_on_a_guideline_a_meta_analysis_or_replicated_trials(kb: KnowledgeBase) -> None:
    items: list[Family | Ingredient] = [*kb.data.families, *kb.data.ingredients]
    strong = [c for item in items for c in item.concerns if c.evidence == "strong"]
    assert strong
    for claim in strong:
        basis = claim.basis
        replicated = basis.study_type in ("meta_analysis", "rct") and (basis.n or 0) >= 2
        assert basis.study_type == "guideline" or replicated, claim


def _set_first_claim(data_copy: Path, **fields: Any) -> None:
    def change(claims: list[dict[str, Any]]) -> None:
        claims[0]["concerns"][0].update(fields)  # Niacinamide → redness, Bissett 2005

    edit_json(data_copy / "claims" / "brightening.json", change)


def test_a_review_graded_strong_is_refused_at_load_naming_the_entry(data_copy: Path) -> None:
    _set_first_claim(data_copy, evidence="strong", basis={"study_type": "review", "n": None})
    with pytest.raises(ValueError, match="(?s)Niacinamide.*graded 'strong'.*at most 'moderate'.*evidence.md"):
        load_knowledge_from(data_copy)


def test_one_trial_cannot_carry_strong_but_two_can(data_copy: Path) -> None:
    _set_first_claim(data_copy, evidence="strong", basis={"study_type": "rct", "n": 1})
    with pytest.raises(ValueError, match="(?s)Niacinamide.*rct, n=1"):
        load_knowledge_from(data_copy)
    _set_first_claim(data_copy, evidence="strong", basis={"study_type": "rct", "n": 2})
    assert load_knowledge_from(data_copy).concern_claims("Niacinamide")[0].evidence == "strong"


def test_a_claim_without_a_basis_is_refused(data_copy: Path) -> None:
    def change(claims: list[dict[str, Any]]) -> None:
        del claims[0]["concerns"][0]["basis"]

    edit_json(data_copy / "claims" / "brightening.json", change)
    with pytest.raises(ValueError, match="(?s)Niacinamide.*basis"):
        load_knowledge_from(data_copy)


@pytest.mark.parametrize(
    "basis", [{"study_type": "rct"}, {"study_type": "rct", "n": 0}, {"study_type": "anecdote"}]
)
def test_a_trial_basis_must_count_its_trials_and_name_a_known_kind(
    data_copy: Path, basis: dict[str, Any]
) -> None:
    _set_first_claim(data_copy, basis=basis)
    with pytest.raises(ValueError, match="Niacinamide"):
        load_knowledge_from(data_copy)


# -- the audited claims (issue 17) ----------------------------------------------------------------


def test_azelaic_acid_is_an_add_on_for_acne_not_a_strong_recommendation(kb: KnowledgeBase) -> None:
    acne = _claim(kb, "Azelaic Acid", "acne")
    assert (acne.evidence, acne.basis.study_type, acne.source_id) == (
        "moderate",
        "guideline",
        "zaenglein_2016",
    )
    assert "add-on" in acne.note


def test_salicylic_acid_acne_grade_rests_on_the_monograph_so_is_moderate(kb: KnowledgeBase) -> None:
    acne = _claim(kb, "Salicylic Acid", "acne")
    assert (acne.evidence, acne.basis.study_type) == ("moderate", "regulation")


def test_caffeine_dark_circles_cite_an_eye_study_and_puffiness_is_not_claimed(kb: KnowledgeBase) -> None:
    dark_circles = _claim(kb, "Caffeine", "dark_circles")
    assert dark_circles.source_id == "ahmadraji_2015" and dark_circles.evidence == "limited"
    assert "constrict" not in dark_circles.note
    assert not [c for c in kb.concern_claims("Caffeine") if c.concern == "puffiness"]


@pytest.mark.parametrize("name", ["Sodium Hyaluronate", "Hyaluronic Acid", "Hydrolyzed Hyaluronic Acid"])
def test_hyaluronic_acid_hydration_cites_a_topical_trial(kb: KnowledgeBase, name: str) -> None:
    claim = _claim(kb, name, "dehydration")
    assert claim.source_id == "pavicic_2011" and claim.basis.study_type == "rct"


def test_only_guideline_or_replicated_trial_claims_are_strong(kb: KnowledgeBase) -> None:
    strong = {
        (inci, claim.concern)
        for concern in ("acne", "sun_protection", "fine_lines")
        for inci, claim in kb.ingredients_for(concern)
        if claim.evidence == "strong"
    }
    assert ("Adapalene", "acne") in strong and ("Zinc Oxide", "sun_protection") in strong
    assert ("Retinol", "fine_lines") not in strong  # one 36-person trial
    assert ("Salicylic Acid", "acne") not in strong
