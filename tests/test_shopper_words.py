"""The words shoppers (and the models calling Shine) use, through the real tools: 'hyperpigmentation' is a
concern Shine knows as dark_spots, 'skin1004 sun serum' finds that sun serum, 'without alcohol' is a filter."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import pytest
from mcp import Client

from shine_mcp.config import Settings
from shine_mcp.knowledge import load_knowledge
from shine_mcp.vocabulary import SynonymDataError, load_synonyms, suggest
from tests.advice.conftest import Shopper

# What a shopper says about their skin -> the concern update_profile saves.
CONCERN_WORDS = [
    ("hyperpigmentation", "dark_spots"),
    ("pigmentation", "dark_spots"),
    ("sun spots", "dark_spots"),
    ("Melasma", "dark_spots"),
    ("post-acne marks", "dark_spots"),
    ("wrinkles", "fine_lines"),
    ("lines", "fine_lines"),
    ("ageing", "fine_lines"),
    ("anti-aging", "fine_lines"),
    ("crow's feet", "fine_lines"),
    ("pores", "large_pores"),
    ("clogged pores", "blackheads"),
    ("breakouts", "acne"),
    ("pimples", "acne"),
    ("blemishes", "acne"),
    ("spots", "acne"),
    ("rosacea", "redness"),
    ("oily", "oiliness"),
    ("greasy", "oiliness"),
    ("dry", "dryness"),
    ("flaky", "dryness"),
    ("dull", "dullness"),
    ("eye bags", "puffiness"),
    ("dark under-eyes", "dark_circles"),
    ("sun", "sun_protection"),
    ("Dark-Spots", "dark_spots"),
    ("blackhead", "blackheads"),
]
SKIN_TYPE_WORDS = [
    ("greasy", "oily"),
    ("oily skin", "oily"),
    ("combo", "combination"),
    ("flaky", "dry"),
    ("reactive", "sensitive"),
]


@pytest.fixture
def shopper(client: Client, settings: Settings) -> Shopper:
    return Shopper(client, settings, "words")


async def search(client: Client, query: str, limit: int = 50) -> dict[str, Any]:
    result = await client.call_tool("search_products", {"query": query, "limit": limit})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    page = result.structured_content
    assert page["products"], f"{query!r} found nothing"
    return page


async def ingredients(client: Client, product_id: str) -> set[str]:
    result = await client.call_tool("get_product", {"product_id": product_id})
    assert result.structured_content is not None
    return {name.lower() for name in result.structured_content["ingredients"]}


# -- update_profile: the vocabulary ------------------------------------------------------------------


@pytest.mark.parametrize(("word", "concern"), CONCERN_WORDS)
async def test_a_shopper_word_for_a_concern_is_saved_as_that_concern(
    shopper: Shopper, word: str, concern: str
) -> None:
    profile = await shopper.ok("update_profile", concerns=[word])
    assert profile["concerns"] == [concern]


@pytest.mark.parametrize(("word", "skin_type"), SKIN_TYPE_WORDS)
async def test_a_shopper_word_for_a_skin_type_is_saved_as_that_type(
    shopper: Shopper, word: str, skin_type: str
) -> None:
    profile = await shopper.ok("update_profile", skin_type=word)
    assert profile["skin_type"] == skin_type


async def test_melasma_and_rosacea_come_back_with_a_note_to_see_a_dermatologist(shopper: Shopper) -> None:
    profile = await shopper.ok("update_profile", concerns=["melasma", "rosacea", "wrinkles"])
    assert profile["concerns"] == ["dark_spots", "redness", "fine_lines"]
    notes = " ".join(profile["notes"]).lower()
    assert "melasma" in notes and "rosacea" in notes and "dermatologist" in notes
    assert len(profile["notes"]) == 2, "plain synonyms need no note"
    again = await shopper.ok("get_profile")
    assert again["notes"] == [] and again["concerns"] == ["dark_spots", "redness", "fine_lines"]


async def test_several_words_for_one_concern_save_it_once(shopper: Shopper) -> None:
    profile = await shopper.ok("update_profile", concerns=["pimples", "breakouts", "acne"])
    assert profile["concerns"] == ["acne"]


async def test_a_typo_is_answered_with_the_concern_it_means_not_a_similar_spelling(shopper: Shopper) -> None:
    message = await shopper.refused("update_profile", concerns=["hyperpigmentaton"])
    assert "did you mean dark_spots?" in message
    assert "dehydration" not in message


async def test_an_unknown_word_sharing_a_word_with_a_known_phrase_gets_that_meaning(shopper: Shopper) -> None:
    message = await shopper.refused("update_profile", concerns=["bags"])
    assert "did you mean puffiness?" in message


async def test_a_word_with_no_meaning_lists_the_known_concerns(shopper: Shopper) -> None:
    message = await shopper.refused("update_profile", concerns=["xyzzy"])
    assert "'xyzzy' is not a concern" in message and "known concerns: acne" in message


def test_suggestions_come_from_meaning_first() -> None:
    assert suggest("wrinkels", "concern")[0] == "fine_lines"
    assert suggest("pigmented patches", "concern")[0] == "dark_spots"


# -- the data file ------------------------------------------------------------------------------------


def synonym_data() -> dict[str, Any]:
    return dict(json.loads(files("shine_mcp").joinpath("synonyms.json").read_text("utf-8")))


def test_every_synonym_entry_names_its_source() -> None:
    for kind in ("concern", "skin_type", "category", "tag"):
        for entry in synonym_data()[kind]:
            assert entry["source"].strip(), entry


@pytest.mark.parametrize(
    ("kind", "entry", "problem"),
    [
        ("concern", {"means": "freckles", "words": ["freckle"], "source": "x"}, "is not a concern"),
        ("concern", {"means": "acne", "words": ["zitz"]}, "'source' must be"),
        ("concern", {"means": "acne", "words": ["wrinkles"], "source": "x"}, "listed already"),
        ("category", {"means": "serum", "words": [], "source": "x"}, "non-empty list"),
    ],
)
def test_a_broken_synonym_entry_stops_start_up(kind: str, entry: dict[str, Any], problem: str) -> None:
    data = synonym_data()
    data[kind] = [*data[kind], entry]
    with pytest.raises(SynonymDataError, match=problem):
        load_synonyms(data)


# -- search_products: categories, concerns and filters in the query ----------------------------------

CATEGORY_PHRASES = [
    ("moisturizer", "moisturiser"),
    ("SPF", "sunscreen"),
    ("face wash", "cleanser"),
    ("serum", "serum"),
    ("sun cream", "sunscreen"),
    ("sheet masks", "mask"),
    ("eye cream", "eye_care"),
    ("pimple patches", "spot_treatment"),
]


@pytest.mark.parametrize(("phrase", "category"), CATEGORY_PHRASES)
async def test_a_product_word_finds_only_that_category(client: Client, phrase: str, category: str) -> None:
    page = await search(client, phrase)
    assert {p["category"] for p in page["products"]} == {category}


CONCERN_PHRASES = [
    ("serum for hyperpigmentation", "serum", "dark_spots"),
    ("cream for wrinkles", "moisturiser", "fine_lines"),
    ("something for breakouts", None, "acne"),
    ("eye cream for dark under-eyes", "eye_care", "dark_circles"),
    ("toner for rosacea", "toner", "redness"),
    ("pores", None, "large_pores"),
]


@pytest.mark.parametrize(("query", "category", "concern"), CONCERN_PHRASES)
async def test_a_concern_in_a_query_finds_products_for_it(
    client: Client, query: str, category: str | None, concern: str
) -> None:
    page = await search(client, query)
    for product in page["products"]:
        assert concern in product["concerns"], product["name"]
        assert category is None or product["category"] == category


async def test_a_melasma_search_tells_the_shopper_to_see_a_dermatologist(client: Client) -> None:
    page = await search(client, "melasma serum")
    assert any("dermatologist" in note for note in page["interpreted"])
    assert all("dark_spots" in p["concerns"] for p in page["products"])


@pytest.mark.parametrize(
    "query", ["toner without alcohol", "alcohol-free toner", "toner free of alcohol", "alcohol free toner"]
)
async def test_asking_for_no_alcohol_excludes_drying_alcohols(client: Client, query: str) -> None:
    drying = {name.lower() for name in load_knowledge().family_members("drying_alcohol")}
    everything = await search(client, "toner")
    page = await search(client, query)
    assert page["total"] < everything["total"], "some toners hold alcohol: the filter must remove them"
    for product in page["products"]:
        assert product["category"] == "toner"
        assert not drying & await ingredients(client, product["id"]), product["name"]


@pytest.mark.parametrize("query", ["moisturiser with no fragrance", "moisturiser without fragrance"])
async def test_asking_for_no_fragrance_excludes_fragrance(client: Client, query: str) -> None:
    fragrance = {name.lower() for name in load_knowledge().family_members("fragrance")}
    page = await search(client, query)
    for product in page["products"]:
        assert not fragrance & await ingredients(client, product["id"]), product["name"]


@pytest.mark.parametrize(
    ("query", "skin_type"),
    [("cleanser for sensitive skin", "sensitive"), ("moisturiser for greasy skin", "oily")],
)
async def test_for_a_skin_type_is_a_filter(client: Client, query: str, skin_type: str) -> None:
    page = await search(client, query)
    assert all(skin_type in p["skin_types"] for p in page["products"])


@pytest.mark.parametrize(
    ("query", "tag"),
    [
        ("vegan sunscreen", "vegan"),
        ("non-comedogenic moisturiser", "non_comedogenic"),
        ("reef safe spf", "reef_safe"),
    ],
)
async def test_a_claim_in_the_query_is_a_filter(client: Client, query: str, tag: str) -> None:
    page = await search(client, query)
    assert all(tag in p["tags"] for p in page["products"])


# -- search_products: a brand and a product word ------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("skin1004 sun serum", "Madagascar Centella Hyalu-Cica Water-Fit Sun Serum SPF 50+"),
        ("SKIN1004 ampoule", "Madagascar Centella Ampoule"),
        ("cosrx snail essence", "Advanced Snail 96 Mucin Power Essence"),
        ("glow recipe toner", "Watermelon Glow PHA + BHA Pore-Tight Toner"),
    ],
)
async def test_a_brand_and_a_product_word_find_that_product_first(
    client: Client, query: str, first: str
) -> None:
    page = await search(client, query, limit=5)
    assert page["products"][0]["name"] == first


async def test_a_brand_of_several_words_and_a_category_find_its_products_of_that_category_first(
    client: Client,
) -> None:
    page = await search(client, "la roche-posay sunscreen", limit=3)
    assert [(p["brand"], p["category"]) for p in page["products"]] == [("La Roche-Posay", "sunscreen")] * 3
    assert any("La Roche-Posay" in note for note in page["interpreted"])


async def test_sun_serum_without_a_brand_is_a_sunscreen(client: Client) -> None:
    page = await search(client, "sun serum")
    assert {p["category"] for p in page["products"]} == {"sunscreen"}


# -- a tool argument outside its list of choices -------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "meant"),
    [
        ({"concerns": ["hyperpigmentation"]}, "dark_spots"),
        ({"concerns": ["acne", "wrinkles"]}, "fine_lines"),
        ({"category": "SPF"}, "sunscreen"),
        ({"category": "face wash"}, "cleanser"),
        ({"skin_type": "greasy"}, "oily"),
    ],
)
async def test_a_shopper_word_in_a_choice_argument_is_answered_with_what_it_means(
    client: Client, arguments: dict[str, Any], meant: str
) -> None:
    result = await client.call_tool("search_products", arguments)
    assert result.is_error
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert f"did you mean {meant!r}?" in text


async def test_recommendations_for_a_shopper_word_work_from_the_concern_it_means(shopper: Shopper) -> None:
    answer = await shopper.ok(
        "recommend_products", concerns=["hyperpigmentation", "breakouts"], skin_type="combo"
    )
    used = answer["used"]
    assert [(c["concern"], c["origin"]) for c in used["concerns"]][:2] == [
        ("dark_spots", "asked"),
        ("acne", "asked"),
    ]
    assert used["skin_type"] == "combination"
