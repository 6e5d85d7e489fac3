"""recommend_products and build_routine beyond the personas: bad input, skin reports, the collaborative
signal, season, determinism, a stale catalog index, an empty catalog, and how clashing actives are
scheduled."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from mcp import Client
from sqlalchemy import text

from shine_mcp.advice.routine import COMPLETE, Candidate, schedule
from shine_mcp.advice.season import season_for
from shine_mcp.config import Settings
from shine_mcp.knowledge import KnowledgeBase
from shine_mcp.server import build_server
from shine_mcp.services import Services
from shine_mcp.store.catalog import get_products, read_products
from shine_mcp.store.skin_reports import SkinReportRecord, add_report, new_report_id
from tests.advice.conftest import Shopper, ingredients_of, text_of

RETINOL = "prd_706be553cc36"  # The Ordinary Retinol 0.5% in Squalane
GLYCOLIC = "prd_9c5532d6cfd5"  # The Ordinary Glycolic Acid 7% Exfoliating Toner
BENZOYL = "prd_292715d09253"  # Neutrogena On-the-Spot Acne Treatment


def _metric(name: str, value: float, confidence: float = 0.9) -> dict[str, Any]:
    return {"name": name, "value": value, "confidence": confidence, "unit": "", "regions_used": []}


async def _report(services: Services, user_id: str, metrics: list[dict[str, Any]], skin: str | None) -> str:
    analysis = {"metrics": metrics, "skin_type": {"value": skin, "sensitive": False}}
    record = SkinReportRecord(id=new_report_id(), user_id=user_id, analysis=analysis, model_hashes={})
    return (await add_report(services.db, record)).id


async def test_bad_input_is_refused_with_the_way_out(shopper: Callable[[str], Shopper]) -> None:
    eve = shopper("eve")
    assert "list_skin_reports" in await eve.refused(
        "recommend_products", report_id="rep_0123456789abcdef01234567"
    )
    assert "more than 0" in await eve.refused("recommend_products", budget=0)
    assert "more than 0" in await eve.refused("build_routine", budget=-10)
    assert "did you mean dark_spots" in await eve.refused("recommend_products", concerns=["dark spotz"])
    assert "did you mean serum" in await eve.refused("recommend_products", category="serums!")
    assert "did you mean oily" in await eve.refused("build_routine", skin_type="oilly")
    refused = await eve.refused("build_routine", budget=3)
    assert "cheapest sunscreen" in refused and "$" in refused


async def test_a_budget_below_every_product_says_what_to_change(shopper: Callable[[str], Shopper]) -> None:
    found = await shopper("fay").ok("recommend_products", budget=1, concerns=["acne"])
    assert found["products"] == [] and any("budget" in s for s in found["suggestions"])


async def test_an_empty_catalog_is_a_clear_error(empty_settings: Settings) -> None:
    async with Client(build_server(empty_settings)) as client:
        for tool in ("recommend_products", "build_routine"):
            result = await client.call_tool(tool, {"concerns": ["acne"]})
            assert result.is_error and "catalog is empty" in text_of(result)


async def test_a_skin_report_adds_what_it_measured_and_ignores_what_it_could_not(
    client: Client, services: Services, shopper: Callable[[str], Shopper], kb: KnowledgeBase
) -> None:
    gus = shopper("gus")
    report_id = await _report(
        services,
        gus.user_id,
        [_metric("redness", 4.2), _metric("shine", 40.0, confidence=0.2), _metric("dark_spots", 1)],
        skin="combination",
    )
    found = await gus.ok("recommend_products", report_id=report_id)
    used = found["used"]
    assert [(c["concern"], c["origin"]) for c in used["concerns"]] == [("redness", "report")]
    assert "4.2" in used["concerns"][0]["detail"] and used["skin_type"] == "combination"
    top = found["products"][0]
    names = await ingredients_of(client, top["product"]["id"])
    assert any(c.concern == "redness" for n in names for c in kb.concern_claims(n))
    assert "skin report" in json.dumps(top["reasons"])
    # Stated concerns come first; the report only adds.
    both = await gus.ok("recommend_products", report_id=report_id, concerns=["acne"])
    assert [c["origin"] for c in both["used"]["concerns"]] == ["asked", "report"]


async def test_the_same_question_gets_the_same_answer(shopper: Callable[[str], Shopper]) -> None:
    hal = shopper("hal")
    first = await hal.ok("recommend_products", concerns=["dryness"], skin_type="dry", limit=10)
    second = await hal.ok("recommend_products", concerns=["dryness"], skin_type="dry", limit=10)
    assert [(p["product"]["id"], p["score"]) for p in first["products"]] == [
        (p["product"]["id"], p["score"]) for p in second["products"]
    ]
    routine = [await hal.ok("build_routine", concerns=["dryness"], style="complete") for _ in range(2)]
    assert routine[0]["am"] == routine[1]["am"] and routine[0]["pm"] == routine[1]["pm"]


async def test_what_similar_people_rated_well_and_bought_moves_up(shopper: Callable[[str], Shopper]) -> None:
    ask = {"concerns": ["dehydration"], "skin_type": "normal", "limit": 20}
    newcomer = shopper("ivy")
    before = [p["product"]["id"] for p in (await newcomer.ok("recommend_products", **ask))["products"]]
    liked = before[12]  # a product well down the list
    for name in ("jon", "kim", "lea", "max"):
        fan = shopper(name)
        await fan.ok("update_profile", skin_type="normal", concerns=["dehydration"])
        await fan.ok("rate_product", product_id=liked, rating=5)
        await fan.ok("add_to_cart", product_id=liked, quantity=1)
    await newcomer.ok("update_profile", skin_type="normal", concerns=["dehydration"])
    after = (await newcomer.ok("recommend_products", **ask))["products"]
    ids = [p["product"]["id"] for p in after]
    assert ids.index(liked) < 12
    assert any(r["kind"] == "similar" for r in after[ids.index(liked)]["reasons"])

    # Something you rated 1-2 stars is not suggested to you again.
    disliked = ids[0]
    await newcomer.ok("rate_product", product_id=disliked, rating=1)
    again = [p["product"]["id"] for p in (await newcomer.ok("recommend_products", **ask))["products"]]
    assert disliked not in again


async def test_an_ingredient_added_after_the_index_was_built_still_excludes_the_product(
    services: Services, shopper: Callable[[str], Shopper]
) -> None:
    nia = shopper("nia")
    await nia.ok("update_profile", avoid_ingredients=["fragrance"])
    top = (await nia.ok("recommend_products", concerns=["dryness"]))["products"][0]["product"]["id"]
    # Another process re-formulates the product behind this one's back: the index still says fragrance-free.
    product = (await get_products(services.db, [top]))[top]
    async with services.db.engine.begin() as connection:
        await connection.execute(
            text("UPDATE products SET ingredients = :i WHERE id = :id"),
            {"i": json.dumps([*product.ingredients, "Parfum"]), "id": top},
        )
    after = [
        p["product"]["id"] for p in (await nia.ok("recommend_products", concerns=["dryness"]))["products"]
    ]
    assert top not in after and len(after) == 5


async def test_season_follows_the_hemisphere_and_nudges_texture(shopper: Callable[[str], Shopper]) -> None:
    assert season_for("AU", None, date(2026, 12, 6)).name == "summer"  # type: ignore[union-attr]
    assert season_for("CA", None, date(2026, 12, 6)).texture == "rich"  # type: ignore[union-attr]
    assert season_for(None, "south", date(2026, 7, 1)).name == "winter"  # type: ignore[union-attr]
    assert season_for("SG", None, date(2026, 7, 1)).texture == "light"  # type: ignore[union-attr]
    assert season_for("FR", None, date(2026, 4, 1)).texture is None  # type: ignore[union-attr]
    assert season_for(None, None, date(2026, 1, 1)) is None

    oli = shopper("oli")
    await oli.ok("update_profile", country="SG")
    found = await oli.ok("recommend_products", category="moisturiser", concerns=["dehydration"])
    assert "SG" in found["used"]["season"]
    assert any(r["kind"] == "season" for p in found["products"] for r in p["reasons"])


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (RETINOL, BENZOYL, {RETINOL: ("pm", "daily"), BENZOYL: ("am", "daily")}),
        (
            RETINOL,
            GLYCOLIC,
            {RETINOL: ("pm", "alternate nights (A)"), GLYCOLIC: ("pm", "alternate nights (B)")},
        ),
    ],
)
async def test_clashing_treatments_are_split_or_alternated_as_the_rule_says(
    services: Services, kb: KnowledgeBase, a: str, b: str, expected: dict[str, tuple[str, str]]
) -> None:
    async with services.running():
        products = await read_products(services.db, [a, b])
    plan = schedule(
        kb, COMPLETE, {"treat": Candidate(products[a], 1.0), "treat_2": Candidate(products[b], 0.9)}
    )
    placed = {p.product.id: (p.slots[0], p.when[p.slots[0]]) for p in plan.steps}
    assert placed == expected
    assert plan.notes and plan.notes[0][1] is not None


async def test_without_any_need_the_answer_says_what_would_make_it_personal(
    shopper: Callable[[str], Shopper],
) -> None:
    found = await shopper("quin").ok("recommend_products")
    assert found["products"] and any("update_profile" in s for s in found["suggestions"])


async def test_an_acne_routine_on_30_dollars_keeps_the_treatment_and_says_what_the_full_one_costs(
    client: Client, kb: KnowledgeBase, shopper: Callable[[str], Shopper]
) -> None:
    routine = await shopper("ada").ok("build_routine", concerns=["acne"], budget=30)
    steps = {s["step"]: s["product"] for s in routine["am"] + routine["pm"]}
    assert set(steps) == {"Treat", "Moisturise", "Sunscreen"}, routine["dropped_steps"]
    names = await ingredients_of(client, steps["Treat"]["id"])
    assert any(c.concern == "acne" for n in names for c in kb.concern_claims(n))
    assert routine["total"]["amount_minor"] <= 3000
    assert routine["dropped_steps"] == ["Cleanse"]
    [cleanse] = routine["dropped"]
    assert cleanse["step"] == "Cleanse" and "$30.00" in cleanse["reason"] and "$36.86" in cleanse["reason"]
    assert cleanse["cheapest_with_it"]["amount_minor"] == 3686
    # $9.97 cleanser + $6.00 niacinamide + $8.90 moisturiser + $11.99 sunscreen
    assert routine["cheapest_complete_total"]["amount_minor"] == 3686
    assert "cleanser" in routine["warnings"][0]


async def test_an_acne_routine_on_40_dollars_has_every_step(shopper: Callable[[str], Shopper]) -> None:
    routine = await shopper("bo").ok("build_routine", concerns=["acne"], budget=40)
    steps = {s["step"] for s in routine["am"] + routine["pm"]}
    assert steps == {"Cleanse", "Treat", "Moisturise", "Sunscreen"}, routine["dropped_steps"]
    assert routine["total"]["amount_minor"] <= 4000
    assert routine["dropped_steps"] == [] and routine["dropped"] == []
    assert routine["cheapest_complete_total"] is None


async def test_a_better_product_just_over_the_budget_is_pointed_out(
    shopper: Callable[[str], Shopper],
) -> None:
    cy = shopper("cy")
    under = await cy.ok("recommend_products", concerns=["dark_spots"], budget=10)
    assert under["products"] and all(p["product"]["price"]["amount_minor"] <= 1000 for p in under["products"])
    [hint] = [s for s in under["suggestions"] if "just over" in s]
    assert "Discoloration Correcting Serum" in hint and "$12.00" in hint and "$10.00" in hint
    # With the money for it, it is the first pick and nothing more is said.
    enough = await cy.ok("recommend_products", concerns=["dark_spots"], budget=12)
    assert enough["products"][0]["product"]["name"] == "Discoloration Correcting Serum"
    assert not [s for s in enough["suggestions"] if "just over" in s]
    # Nothing under the budget: the closest fit above it is named.
    nothing = await cy.ok("recommend_products", concerns=["acne"], budget=5)
    assert nothing["products"] == []
    assert [s for s in nothing["suggestions"] if "just over" in s and "$6.00" in s]
