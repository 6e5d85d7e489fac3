"""Cautions a profile needs: pregnancy, sensitive skin, sun sensitivity, allergens."""

import pytest

from shine_mcp.knowledge import KnowledgeBase, load_knowledge

SENSITIVE = {"sensitive_skin", "pregnancy", "photosensitivity"}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge()


def kinds(kb: KnowledgeBase, name: str) -> set[str]:
    return {c.kind for c in kb.cautions(name)}


@pytest.mark.parametrize("retinoid", ["Retinol", "Retinal", "Retinyl Palmitate", "Tretinoin", "Vitamin A"])
def test_retinoids_carry_pregnancy_and_photosensitivity(kb: KnowledgeBase, retinoid: str) -> None:
    assert {"pregnancy", "photosensitivity"} <= kinds(kb, retinoid)


def test_pregnancy_advice_is_sourced_and_actionable(kb: KnowledgeBase) -> None:
    (pregnancy,) = [c for c in kb.cautions("Retinol") if c.kind == "pregnancy"]
    assert "pregnan" in pregnancy.advice.lower()
    assert kb.source(pregnancy.source_id).url.startswith("https://")


@pytest.mark.parametrize("aha", ["Glycolic Acid", "Lactic Acid", "Mandelic Acid"])
def test_ahas_make_skin_sun_sensitive(kb: KnowledgeBase, aha: str) -> None:
    (photo,) = [c for c in kb.cautions(aha) if c.kind == "photosensitivity"]
    assert "sunscreen" in photo.advice.lower()


@pytest.mark.parametrize(
    "name",
    [
        "Parfum",
        "Fragrance",
        "Linalool",
        "Lavender Oil",
        "Lavandula Angustifolia Oil",
        "Alcohol Denat.",
        "SD Alcohol 40",
    ],
)
def test_fragrance_essential_oils_and_drying_alcohol_warn_sensitive_skin(
    kb: KnowledgeBase, name: str
) -> None:
    assert "sensitive_skin" in kinds(kb, name)


def test_unknown_essential_oils_are_cautioned_through_their_guessed_family(kb: KnowledgeBase) -> None:
    assert kb.lookup("Cymbopogon Martini Oil") is None
    assert "sensitive_skin" in kinds(kb, "Cymbopogon Martini Oil")
    assert "sensitive_skin" in kinds(kb, "Natural Fragrance")


@pytest.mark.parametrize(
    "name",
    [
        "Cetearyl Alcohol",
        "Cetyl Alcohol",
        "Glycerin",
        "Niacinamide",
        "Helianthus Annuus Seed Oil",
        "Squalane",
    ],
)
def test_fatty_alcohols_carrier_oils_and_gentle_ingredients_carry_none_of_those(
    kb: KnowledgeBase, name: str
) -> None:
    assert kinds(kb, name) & SENSITIVE == set()


def test_azelaic_acid_is_not_flagged_for_pregnancy(kb: KnowledgeBase) -> None:
    assert "pregnancy" not in kinds(kb, "Azelaic Acid")
    assert "pregnancy" in kinds(kb, "Hydroquinone")


def test_cautions_are_not_repeated(kb: KnowledgeBase) -> None:
    for ingredient in kb.data.ingredients:
        cautions = kb.cautions(ingredient.inci)
        assert len(cautions) == len(set(cautions)), ingredient.inci


@pytest.mark.parametrize("name", ["Salicylic Acid", "Sulfur"])
def test_acne_drug_cautions_follow_the_monograph_directions_not_once_a_day_at_most(
    kb: KnowledgeBase, name: str
) -> None:
    # 21 CFR 333.350: apply one to three times daily, starting with one application a day.
    (irritation,) = [c for c in kb.cautions(name) if c.kind == "irritation"]
    assert "at most" not in irritation.advice
    assert "once a day" in irritation.advice and "two or three times" in irritation.advice
    assert irritation.source_id == "fda_21cfr333"


def test_retinoid_sun_caution_says_it_comes_from_drug_labels(kb: KnowledgeBase) -> None:
    (photo,) = [c for c in kb.cautions("Retinol") if c.kind == "photosensitivity"]
    assert "drug labels" in photo.advice and "sunscreen" in photo.advice
    assert "setid=" in kb.source(photo.source_id).url
