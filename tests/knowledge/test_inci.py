"""The INCI parser on messy ingredient lists as they appear on packs, shop pages and scans."""

from shine_mcp.knowledge import parse_inci


def names(text: str) -> list[str]:
    return [p.name for p in parse_inci(text)]


def test_a_shop_page_list_with_prefix_synonyms_and_trailing_full_stop() -> None:
    parsed = parse_inci(
        "Ingredients: Aqua/Water/Eau, Glycerin, Niacinamide 10%, Zinc PCA, Parfum (Fragrance), "
        "Tocopherol (Vitamin E)."
    )
    assert [p.name for p in parsed] == [
        "Water",
        "Glycerin",
        "Niacinamide",
        "Zinc PCA",
        "Parfum",
        "Tocopherol",
    ]
    assert [p.position for p in parsed] == [1, 2, 3, 4, 5, 6]
    assert parsed[2].concentration_pct == 10.0
    assert parsed[4].family == "fragrance"
    assert all(p.known for p in parsed)


def test_semicolons_newlines_and_bullets_separate_ingredients() -> None:
    text = (
        "Water; Glycerin; Sodium Hyaluronate\nPanthenol\n• Allantoin · Ceramide NP | Cholesterol ▪ Squalane"
    )
    assert names(text) == [
        "Water",
        "Glycerin",
        "Sodium Hyaluronate",
        "Panthenol",
        "Allantoin",
        "Ceramide NP",
        "Cholesterol",
        "Squalane",
    ]


def test_may_contain_colourants_are_flagged_and_canonicalised() -> None:
    parsed = parse_inci("Aqua, Glycerin, Mica. May contain (+/-): CI 77891, CI 77491, CI 77492.")
    assert [(p.name, p.may_contain) for p in parsed] == [
        ("Water", False),
        ("Glycerin", False),
        ("Mica", False),
        ("Titanium Dioxide", True),
        ("CI 77491", True),
        ("CI 77492", True),
    ]


def test_bracketed_plus_minus_and_french_may_contain() -> None:
    assert [p.may_contain for p in parse_inci("Talc, Mica [+/- CI 77891, CI 77499]")] == [
        False,
        False,
        True,
        True,
    ]
    assert [p.may_contain for p in parse_inci("Mica, Peut contenir: CI 77491")] == [False, True]


def test_organic_asterisks_and_their_footnote_are_dropped() -> None:
    text = (
        "Aloe Barbadensis Leaf Juice*, Glycerin, Butyrospermum Parkii Butter*, Parfum**. *Organic **Natural"
    )
    assert names(text) == ["Aloe Barbadensis Leaf Juice", "Glycerin", "Butyrospermum Parkii Butter", "Parfum"]


def test_footnotes_in_their_usual_wordings_are_not_ingredients() -> None:
    for footnote in (
        "* Ingredients from organic farming",
        "*= certified organic ingredients",
        "(*) from organic farming",
        "99% of the total ingredients are from natural origin",
        "¹ Organic",
    ):
        assert names(f"Water, Cocos Nucifera Oil*, Limonene¹. {footnote}") == [
            "Water",
            "Cocos Nucifera Oil",
            "Limonene",
        ], footnote


def test_shouting_case_is_canonicalised_and_unknowns_are_title_cased() -> None:
    parsed = parse_inci("AQUA, SODIUM HYALURONATE, NIACINAMIDE, ALCOHOL DENAT., PARFUM, MORINGA SEED EXTRACT")
    assert [p.name for p in parsed] == [
        "Water",
        "Sodium Hyaluronate",
        "Niacinamide",
        "Alcohol Denat.",
        "Parfum",
        "Moringa Seed Extract",
    ]
    assert [p.known for p in parsed][-1] is False
    assert parsed[3].family == "drying_alcohol"


def test_parenthesised_synonyms_and_slashes() -> None:
    assert names("Tocopherol (Vitamin E), Parfum (Fragrance), Fragrance/Parfum, Water (Aqua)") == [
        "Tocopherol",
        "Parfum",
        "Water",
    ]
    assert names("Butyrospermum Parkii (Shea) Butter, Titanium Dioxide (CI 77891)") == [
        "Butyrospermum Parkii Butter",
        "Titanium Dioxide",
    ]


def test_common_names_map_to_inci() -> None:
    assert names("Vitamin B3, Vitamin C, Pro-Vitamin B5, Shea Butter, Tea Tree Oil, Green Tea Extract") == [
        "Niacinamide",
        "Ascorbic Acid",
        "Panthenol",
        "Butyrospermum Parkii Butter",
        "Melaleuca Alternifolia Leaf Oil",
        "Camellia Sinensis Leaf Extract",
    ]


def test_concentrations_before_after_and_in_parentheses() -> None:
    parsed = parse_inci("2% Salicylic Acid, Retinol 0.3%, Glycolic Acid (7 %), Ferulic Acid (0,5%), Water")
    assert [(p.name, p.concentration_pct) for p in parsed] == [
        ("Salicylic Acid", 2.0),
        ("Retinol", 0.3),
        ("Glycolic Acid", 7.0),
        ("Ferulic Acid", 0.5),
        ("Water", None),
    ]


def test_unicode_dashes_and_non_breaking_spaces() -> None:
    text = "Water\u00a0(Aqua), Glycerin \u2013 Niacinamide \u2014 5%, Butylene\u00a0Glycol, Alpha\u2010Arbutin, PEG\u2011100 Stearate"
    parsed = parse_inci(text)
    assert [p.name for p in parsed] == [
        "Water",
        "Glycerin",
        "Niacinamide",
        "Butylene Glycol",
        "Alpha-Arbutin",
        "PEG-100 Stearate",
    ]
    assert parsed[2].concentration_pct == 5.0


def test_commas_inside_chemical_names_do_not_split() -> None:
    assert names("Aqua, 1,2-Hexanediol, Glycerin") == ["Water", "1,2-Hexanediol", "Glycerin"]


def test_a_final_and_and_supplier_and_separators_split() -> None:
    assert names("Water, Cetearyl Alcohol, Glycerin and Dimethicone.") == [
        "Water",
        "Cetearyl Alcohol",
        "Glycerin",
        "Dimethicone",
    ]
    assert names("Cetearyl Alcohol (and) Ceteareth-20") == ["Cetearyl Alcohol", "Ceteareth-20"]


def test_drug_facts_active_and_inactive_sections() -> None:
    parsed = parse_inci(
        "Active ingredients: Zinc Oxide 20%. Inactive ingredients: Water, Caprylic/Capric Triglyceride"
    )
    assert [(p.name, p.concentration_pct) for p in parsed] == [
        ("Zinc Oxide", 20.0),
        ("Water", None),
        ("Caprylic/Capric Triglyceride", None),
    ]


def test_nano_markers_and_duplicates() -> None:
    assert names("Titanium Dioxide [nano], Zinc Oxide (nano), Aqua, Water") == [
        "Titanium Dioxide",
        "Zinc Oxide",
        "Water",
    ]


def test_unknown_essential_oils_and_fragrance_words_get_a_family() -> None:
    parsed = parse_inci("Cymbopogon Martini Oil, Natural Aroma, Helianthus Annuus Seed Oil")
    assert [p.family for p in parsed] == ["essential_oil", "fragrance", None]


def test_empty_and_blank_text_give_nothing() -> None:
    assert parse_inci("") == []
    assert parse_inci("  ,  ;  . ") == []
