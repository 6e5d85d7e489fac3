"""Every interaction rule fires on realistic products, in either order, and nothing else clashes."""

import pytest

from shine_mcp.knowledge import KnowledgeBase, load_knowledge, parse_inci

# Real-world style INCI lists, one product each.
RETINOL_SERUM = "Aqua, Squalane, Glycerin, Retinol 0.3%, Tocopherol, Phenoxyethanol"
RETINAL_CREAM = "Water, Caprylic/Capric Triglyceride, Retinal, Ceramide NP, Cholesterol"
TRETINOIN_CREAM = "Tretinoin 0.025%, Stearic Acid, Isopropyl Myristate, Xanthan Gum"
GLYCOLIC_TONER = "Aqua, Glycolic Acid 7%, Aloe Barbadensis Leaf Juice, Sodium Hydroxide, Glycerin"
MANDELIC_SERUM = "Aqua/Water/Eau, Mandelic Acid 10%, Propanediol, Sodium Hyaluronate"
BHA_LIQUID = "Water, Butylene Glycol, 2% Salicylic Acid, Niacinamide, Methylpropanediol"
PHA_TONER = "Aqua, Gluconolactone, Glycerin, Calcium Gluconate, Sodium Benzoate"
BPO_GEL = "Benzoyl Peroxide 5%, Water, Carbomer, Sodium Hydroxide, Glycerin"
SULFUR_MASK = "Sulfur 10%, Kaolin, Bentonite, Zinc Oxide, Water"
VITAMIN_C_SERUM = "Aqua, L-Ascorbic Acid 15%, Ethoxydiglycol, Tocopherol, Ferulic Acid, Propylene Glycol"
LACTIC_PEEL = "Aqua, Lactic Acid 10%, Glycerin, Sodium Hydroxide"

# rule id → two products that trigger it
CASES: dict[str, tuple[str, str]] = {
    "retinoid_aha": (RETINOL_SERUM, GLYCOLIC_TONER),
    "retinoid_bha": (RETINAL_CREAM, BHA_LIQUID),
    "retinoid_sulfur": (TRETINOIN_CREAM, SULFUR_MASK),
    "retinoid_benzoyl_peroxide": (TRETINOIN_CREAM, BPO_GEL),
    "aha_ascorbic_acid": (GLYCOLIC_TONER, VITAMIN_C_SERUM),
    "bha_ascorbic_acid": (BHA_LIQUID, VITAMIN_C_SERUM),
    "benzoyl_peroxide_ascorbic_acid": (BPO_GEL, VITAMIN_C_SERUM),
    "benzoyl_peroxide_bha": (BPO_GEL, BHA_LIQUID),
    "benzoyl_peroxide_sulfur": (BPO_GEL, SULFUR_MASK),
    "exfoliant_stack_aha_bha": (MANDELIC_SERUM, BHA_LIQUID),
    "exfoliant_stack_aha_aha": (GLYCOLIC_TONER, LACTIC_PEEL),
    "exfoliant_stack_aha_pha": (LACTIC_PEEL, PHA_TONER),
    "exfoliant_stack_bha_pha": (BHA_LIQUID, PHA_TONER),
}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge()


def names(text: str) -> list[str]:
    return [p.name for p in parse_inci(text)]


def test_every_rule_has_a_case_here(kb: KnowledgeBase) -> None:
    assert {rule.id for rule in kb.rules} == set(CASES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_two_products_trigger_the_rule_in_either_order(kb: KnowledgeBase, rule_id: str) -> None:
    first, second = (names(text) for text in CASES[rule_id])
    forward = [c for c in kb.clashes(first, second) if c.rule.id == rule_id]
    backward = [c for c in kb.clashes(second, first) if c.rule.id == rule_id]
    assert forward, f"{rule_id} did not fire"
    assert {(c.a_ingredient, c.b_ingredient) for c in forward} == {
        (c.b_ingredient, c.a_ingredient) for c in backward
    }
    clash = forward[0]
    assert clash.a_ingredient in first and clash.b_ingredient in second
    assert kb.source(clash.rule.source_id).url.startswith("https://")
    assert clash.rule.advice and clash.rule.why


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (["Niacinamide"], ["Ascorbic Acid"]),
        (["Hyaluronic Acid", "Glycerin"], ["Retinol"]),
        (["Niacinamide", "Zinc PCA"], ["Retinol", "Ceramide NP"]),
        (["Azelaic Acid"], ["Niacinamide", "Sodium Hyaluronate"]),
        (["Zinc Oxide", "Titanium Dioxide"], ["Ascorbic Acid", "Tocopherol"]),
        (["Bakuchiol"], ["Glycolic Acid"]),
        (["Sodium Ascorbyl Phosphate"], ["Glycolic Acid"]),
    ],
)
def test_compatible_pairs_do_not_clash(kb: KnowledgeBase, first: list[str], second: list[str]) -> None:
    assert kb.clashes(first, second) == []
    assert kb.clashes(second, first) == []


ADAPALENE_GEL = "Adapalene, Aqua/Water, Propylene Glycol, Carbomer, Poloxamer 182, Disodium EDTA"
ADAPALENE_BPO_GEL = "Adapalene 0.1%, Benzoyl Peroxide 2.5%, Water, Glycerin, Carbomer, Poloxamer 124"


def test_adapalene_is_exempt_from_the_benzoyl_peroxide_rule(kb: KnowledgeBase) -> None:
    """Benzoyl peroxide oxidises tretinoin; adapalene is stable beside it (they are sold as one gel)."""
    assert kb.clashes(names(ADAPALENE_GEL), names(BPO_GEL)) == []
    combined = names(ADAPALENE_BPO_GEL)
    assert kb.clashes(combined, combined) == []
    assert [c.rule.id for c in kb.clashes(names(RETINOL_SERUM), names(BPO_GEL))] == [
        "retinoid_benzoyl_peroxide"
    ]
    # the exemption is for this rule only: adapalene and an AHA still go on different nights
    assert [c.rule.id for c in kb.clashes(names(ADAPALENE_GEL), names(GLYCOLIC_TONER))] == ["retinoid_aha"]


def test_names_are_canonicalised_before_matching(kb: KnowledgeBase) -> None:
    clashes = kb.clashes(["vitamin a"], ["GLYCOLIC ACID"])
    assert [(c.a_ingredient, c.b_ingredient, c.rule.id) for c in clashes] == [
        ("Retinol", "Glycolic Acid", "retinoid_aha")
    ]


def test_a_list_against_itself_finds_clashes_inside_one_product_once(kb: KnowledgeBase) -> None:
    peel = names("Aqua, Glycolic Acid, Lactic Acid, Salicylic Acid, Retinol")
    found = {(c.rule.id, frozenset((c.a_ingredient, c.b_ingredient))) for c in kb.clashes(peel, peel)}
    assert len(found) == len(kb.clashes(peel, peel))
    assert ("retinoid_aha", frozenset({"Retinol", "Glycolic Acid"})) in found
    assert ("exfoliant_stack_aha_aha", frozenset({"Glycolic Acid", "Lactic Acid"})) in found
    assert ("retinoid_bha", frozenset({"Retinol", "Salicylic Acid"})) in found


def test_an_ingredient_never_clashes_with_itself(kb: KnowledgeBase) -> None:
    assert kb.clashes(["Glycolic Acid"], ["Glycolic Acid"]) == []
    assert kb.clashes(["Retinol"], ["Retinol", "Retinyl Palmitate"]) == []


def test_unknown_ingredients_and_guessed_families_are_handled(kb: KnowledgeBase) -> None:
    assert kb.clashes(["Moon Dust Extract"], ["Retinol"]) == []
    assert kb.active_keys("Citrus Nobilis Peel Oil") == {"Citrus Nobilis Peel Oil", "family:essential_oil"}


def test_active_keys_are_the_canonical_name_and_family(kb: KnowledgeBase) -> None:
    assert kb.active_keys("Vitamin A") == {"Retinol", "family:retinoid"}
    assert kb.active_keys("Niacinamide") == {"Niacinamide"}


def test_severities_and_resolutions_say_what_to_do(kb: KnowledgeBase) -> None:
    by_id = {rule.id: rule for rule in kb.rules}
    assert by_id["retinoid_benzoyl_peroxide"].resolution == "split_am_pm"
    assert by_id["retinoid_aha"].severity == "avoid_same_slot"
    assert by_id["retinoid_aha"].resolution == "alternate_nights"
    assert by_id["aha_ascorbic_acid"].resolution == "split_am_pm"


def test_a_retinoid_and_a_pha_do_not_clash(kb: KnowledgeBase) -> None:
    # Green 2009 (the source the removed rule cited) says hydroxyacids combine with actives to improve
    # tolerability; no source says a retinoid and a PHA should be kept apart.
    assert kb.clashes(names(RETINOL_SERUM), names(PHA_TONER)) == []


def test_retinoid_rules_cite_a_label_and_say_the_cosmetic_retinoid_part_is_a_precaution(
    kb: KnowledgeBase,
) -> None:
    by_id = {rule.id: rule for rule in kb.rules}
    for rule_id in ("retinoid_aha", "retinoid_bha", "retinoid_sulfur"):
        rule = by_id[rule_id]
        assert "tretinoin label" in rule.why and "precaution" in rule.why, rule_id
        assert "setid=" in kb.source(rule.source_id).url, rule_id
