"""The bundled knowledge data: enough of it, every claim sourced, every source used."""

from pathlib import Path
from typing import Any

import pytest

from shine_mcp.knowledge import Family, Ingredient, KnowledgeBase, load_knowledge, load_knowledge_from
from shine_mcp.vocabulary import CONCERNS
from tests.knowledge.helpers import edit_json

ACTIVE_FAMILIES = {"retinoid", "aha", "bha", "pha", "benzoyl_peroxide", "vitamin_c", "uv_filter", "ceramide"}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge()


def _cited(kb: KnowledgeBase) -> set[str]:
    cited = {rule.source_id for rule in kb.rules}
    items: list[Family | Ingredient] = [*kb.data.families, *kb.data.ingredients]
    for item in items:
        cited |= {
            item.source_id,
            *(c.source_id for c in item.concerns),
            *(c.source_id for c in item.cautions),
        }
    return cited


def test_the_base_knows_at_least_150_ingredients_each_with_functions_and_a_source(kb: KnowledgeBase) -> None:
    assert len(kb.data.ingredients) >= 150
    for ingredient in kb.data.ingredients:
        assert ingredient.functions, ingredient.inci
        assert ingredient.source_id in kb.sources, ingredient.inci


def test_every_member_of_an_active_family_and_every_active_addresses_a_concern(kb: KnowledgeBase) -> None:
    for ingredient in kb.data.ingredients:
        if ingredient.family in ACTIVE_FAMILIES or "active" in ingredient.functions:
            assert kb.concern_claims(ingredient.inci), f"{ingredient.inci} has no concern claim"


def test_every_cited_source_exists_and_every_source_is_cited(kb: KnowledgeBase) -> None:
    cited = _cited(kb)
    assert cited <= set(kb.sources)
    assert set(kb.sources) - cited == set()


def test_sources_are_https_and_papers_have_a_year(kb: KnowledgeBase) -> None:
    for source in kb.sources.values():
        assert source.url.startswith("https://"), source.id
        assert 1950 < source.year < 2100, source.id
        assert source.title and source.publisher


# Concerns no verified source supports an ingredient for (docs/sources-check.md): shown without evidence.
UNSUPPORTED_CONCERNS = {"puffiness"}


def test_every_concern_of_the_vocabulary_has_ingredients_strongest_first(kb: KnowledgeBase) -> None:
    rank = {"strong": 0, "moderate": 1, "limited": 2}
    for concern in CONCERNS:
        found = kb.ingredients_for(concern)
        if concern in UNSUPPORTED_CONCERNS:
            assert found == [], f"{concern} now has evidence: take it off UNSUPPORTED_CONCERNS"
            continue
        assert found, f"nothing addresses {concern}"
        assert [rank[claim.evidence] for _, claim in found] == sorted(rank[c.evidence] for _, c in found)
        assert all(claim.concern == concern for _, claim in found)


def test_sun_protection_is_strong_only_for_uv_filters(kb: KnowledgeBase) -> None:
    strong = {inci for inci, claim in kb.ingredients_for("sun_protection") if claim.evidence == "strong"}
    assert {"Zinc Oxide", "Titanium Dioxide", "Butyl Methoxydibenzoylmethane"} <= strong
    assert strong <= kb.family_members("uv_filter")


def test_an_ingredients_own_claim_overrides_its_familys_for_the_same_concern(kb: KnowledgeBase) -> None:
    palmitate = [c for c in kb.concern_claims("Retinyl Palmitate") if c.concern == "fine_lines"]
    assert [c.evidence for c in palmitate] == ["limited"]
    # ...while claims it does not make itself still come from the family.
    assert any(c.concern == "uneven_texture" for c in kb.concern_claims("Mandelic Acid"))


def test_the_main_actives_have_the_claims_a_shopper_expects(kb: KnowledgeBase) -> None:
    def concerns(name: str) -> set[str]:
        return {c.concern for c in kb.concern_claims(name)}

    assert {"redness", "oiliness", "dark_spots"} <= concerns("Vitamin B3")
    assert {"acne", "blackheads"} <= concerns("Salicylic Acid")
    assert "acne" in concerns("Benzoyl Peroxide")
    assert "dark_spots" in concerns("Alpha-Arbutin")
    assert "dehydration" in concerns("Sodium Hyaluronate")
    assert "dark_circles" in concerns("Caffeine")
    assert "fine_lines" in concerns("Retinol")
    assert kb.concern_claims("an unknown botanical") == []


def test_no_myth_niacinamide_and_vitamin_c_do_not_cancel_out(kb: KnowledgeBase) -> None:
    assert kb.clashes(["Niacinamide"], ["Ascorbic Acid"]) == []
    for rule in kb.rules:
        keys = {rule.a, rule.b}
        assert "Niacinamide" not in keys


def test_unknown_concerns_are_refused(kb: KnowledgeBase) -> None:
    with pytest.raises(ValueError, match="wrinkles"):
        kb.ingredients_for("wrinkles")


def test_source_lookup_names_the_missing_id(kb: KnowledgeBase) -> None:
    assert kb.source("kafi_2007").year == 2007
    with pytest.raises(KeyError, match="nope"):
        kb.source("nope")


# -- validation at load: a broken data file fails naming the entry -------------------------------------


def test_a_copy_of_the_bundled_data_loads(data_copy: Path) -> None:
    assert len(load_knowledge_from(data_copy).data.ingredients) == len(load_knowledge().data.ingredients)


def test_a_claim_citing_an_unknown_source_names_the_ingredient(data_copy: Path) -> None:
    def change(claims: list[dict[str, Any]]) -> None:
        claims[0]["concerns"][0]["source_id"] = "made_up_2099"

    edit_json(data_copy / "claims" / "brightening.json", change)
    with pytest.raises(ValueError, match="Niacinamide.*made_up_2099"):
        load_knowledge_from(data_copy)


def test_a_concern_outside_the_vocabulary_names_the_entry(data_copy: Path) -> None:
    def change(claims: list[dict[str, Any]]) -> None:
        claims[0]["concerns"][0]["concern"] = "wrinkles"

    edit_json(data_copy / "claims" / "brightening.json", change)
    with pytest.raises(ValueError, match="Niacinamide"):
        load_knowledge_from(data_copy)


def test_claims_for_an_unknown_ingredient_name_it(data_copy: Path) -> None:
    def change(claims: list[dict[str, Any]]) -> None:
        claims.append({"target": "Unicorn Extract", "concerns": []})

    edit_json(data_copy / "claims" / "brightening.json", change)
    with pytest.raises(ValueError, match="Unicorn Extract"):
        load_knowledge_from(data_copy)


def test_an_interaction_with_an_unresolvable_key_names_the_rule(data_copy: Path) -> None:
    def change(rules: list[dict[str, Any]]) -> None:
        rules[0]["b"] = "family:unicorns"

    edit_json(data_copy / "interactions.json", change)
    with pytest.raises(ValueError, match="retinoid_aha.*family:unicorns"):
        load_knowledge_from(data_copy)


def test_an_exemption_outside_the_rules_families_names_the_rule(data_copy: Path) -> None:
    def change(rules: list[dict[str, Any]]) -> None:
        rules[0]["exempt"] = ["Niacinamide"]

    edit_json(data_copy / "interactions.json", change)
    with pytest.raises(ValueError, match="retinoid_aha.*exempt 'Niacinamide'"):
        load_knowledge_from(data_copy)


def test_an_interaction_citing_an_unknown_source_names_the_rule(data_copy: Path) -> None:
    def change(rules: list[dict[str, Any]]) -> None:
        rules[-1]["source_id"] = "blog_post"

    edit_json(data_copy / "interactions.json", change)
    with pytest.raises(ValueError, match="blog_post"):
        load_knowledge_from(data_copy)


def test_a_plain_http_source_is_refused(data_copy: Path) -> None:
    def change(sources: list[dict[str, Any]]) -> None:
        sources[0]["url"] = "http://example.org"

    edit_json(data_copy / "sources.json", change)
    with pytest.raises(ValueError, match="https"):
        load_knowledge_from(data_copy)


def test_what_to_avoid_splits_into_keys_and_words_matched_inside_names(kb: KnowledgeBase) -> None:
    keys, words = kb.exclusion_terms(["Lanolin", "fragrance", "shea", "mineral oil"])
    assert {"lanolin", "family:fragrance", "paraffinum liquidum"} <= keys
    # a known ingredient is also matched inside names (its derivatives); a family only by its members
    assert words == {"lanolin", "shea", "mineral oil", "paraffinum liquidum"}
