"""The persona set: people with different skin, limits and budgets, each getting recommendations and a
routine from the demo catalog.

Hard limits must hold for every persona, every product: no avoided ingredient (allergies and
sensitivities), nothing with a pregnancy caution or a retinoid for someone pregnant or nursing, each
product within the budget and the routine's total within it, sunscreen every morning, the stated
preferences (vegan, reef-safe…), and no clash between two products used in the same slot (each
alternate night counted as its own slot). Soft expectation: the top recommendation addresses the
persona's main concern with an ingredient that has evidence for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from mcp import Client

from shine_mcp.knowledge import KnowledgeBase
from tests.advice.conftest import Shopper, avoided_in, ingredients_of, unsafe_in_pregnancy


@dataclass(frozen=True)
class Persona:
    name: str
    profile: dict[str, Any]
    main_concern: str
    ask: dict[str, Any] = field(default_factory=dict)  # recommend_products arguments
    style: str = "minimal"
    routine_budget: float | None = None  # build_routine's budget argument (else the profile's)
    vegan: bool = False


PERSONAS = [
    Persona(
        "oily acne-prone teen with $30",
        {"skin_type": "oily", "concerns": ["acne", "oiliness"], "budget": 30},
        "acne",
    ),
    Persona(
        "dry sensitive 55-year-old",
        {
            "skin_type": "dry",
            "concerns": ["fine_lines", "dryness"],
            "sensitivities": ["fragrance"],
            "budget": 150,
        },
        "fine_lines",
        style="complete",
    ),
    Persona(
        "pregnant with dark spots",
        {"skin_type": "normal", "concerns": ["dark_spots"], "pregnant_or_nursing": True, "budget": 90},
        "dark_spots",
        style="complete",
    ),
    Persona(
        "fragrance allergy",
        {"skin_type": "combination", "concerns": ["dehydration"], "avoid_ingredients": ["fragrance"]},
        "dehydration",
        routine_budget=120,
    ),
    Persona(
        "combination skin in a humid summer",
        {
            "skin_type": "combination",
            "concerns": ["large_pores", "oiliness"],
            "country": "Singapore",
            "budget": 80,
        },
        "large_pores",
    ),
    Persona(
        "vegan on a budget",
        {"skin_type": "normal", "concerns": ["dullness"], "preferences": ["vegan"], "budget": 45},
        "dullness",
        vegan=True,
    ),
    Persona(
        "redness-prone, no essential oils or drying alcohol",
        {
            "skin_type": "sensitive",
            "concerns": ["redness", "sensitivity"],
            "avoid_ingredients": ["essential oils", "drying alcohol"],
            "budget": 100,
        },
        "redness",
    ),
    Persona(
        "dry skin in a Canadian winter",
        {"skin_type": "dry", "concerns": ["dryness"], "country": "CA", "budget": 70},
        "dryness",
    ),
    Persona(
        "retinoid-curious with texture and lines",
        {"skin_type": "normal", "concerns": ["fine_lines", "uneven_texture"]},
        "fine_lines",
        style="complete",
        routine_budget=200,
    ),
    Persona(
        "lanolin allergy and shea avoidance",
        {"skin_type": "dry", "concerns": ["dryness"], "avoid_ingredients": ["lanolin", "shea"], "budget": 90},
        "dryness",
    ),
    Persona(
        "tired eyes",
        {"skin_type": "normal", "concerns": ["dark_circles", "puffiness"]},
        "dark_circles",
        ask={"category": "eye_care"},
        style="complete",
        routine_budget=160,
    ),
    Persona(
        "acne, blackheads and first lines",
        {"skin_type": "oily", "concerns": ["acne", "blackheads", "fine_lines"], "budget": 160},
        "acne",
        style="complete",
    ),
    Persona(
        "nursing mother with breakouts",
        {"skin_type": "combination", "concerns": ["acne"], "pregnant_or_nursing": True, "budget": 60},
        "acne",
    ),
    Persona(
        "cruelty-free, reef-safe beach traveller",
        {
            "skin_type": "normal",
            "concerns": ["sun_protection"],
            "preferences": ["cruelty_free", "reef_safe"],
            "hemisphere": "south",
        },
        "sun_protection",
        ask={"category": "sunscreen"},
        routine_budget=120,
    ),
]


def _budget_minor(persona: Persona) -> int | None:
    budget = persona.routine_budget or persona.profile.get("budget")
    return round(budget * 100) if budget else None


async def _hard_limits(
    client: Client, kb: KnowledgeBase, persona: Persona, product: dict[str, Any]
) -> list[str]:
    names = await ingredients_of(client, product["id"])
    broken = [f"avoided {hit}" for hit in avoided_in(kb, names, persona.profile.get("avoid_ingredients", []))]
    broken += [
        f"sensitivity {hit}" for hit in avoided_in(kb, names, persona.profile.get("sensitivities", []))
    ]
    if persona.profile.get("pregnant_or_nursing"):
        broken += [f"pregnancy: {n}" for n in unsafe_in_pregnancy(kb, names)]
    for preference in persona.profile.get("preferences", []):
        if preference == "reef_safe" and product["category"] != "sunscreen":
            continue  # a claim about UV filters
        if preference not in product["tags"]:
            broken.append(f"not {preference}")
    return [f"{product['name']}: {b}" for b in broken]


def _slots(routine: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each slot a product is used in together: the morning, and each kind of evening."""
    evenings: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    for step in routine["pm"]:
        nights = ["A"] if "(A)" in step["when"] else ["B"] if "(B)" in step["when"] else ["A", "B"]
        for night in nights:
            evenings[night].append(step)
    return {"am": routine["am"], "pm night A": evenings["A"], "pm night B": evenings["B"]}


async def _clashes_in_slots(client: Client, kb: KnowledgeBase, routine: dict[str, Any]) -> list[str]:
    found = []
    for slot, steps in _slots(routine).items():
        products = {s["product"]["id"]: s["product"]["name"] for s in steps}
        ids = sorted(products)
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                for clash in kb.clashes(await ingredients_of(client, a), await ingredients_of(client, b)):
                    found.append(f"{slot}: {products[a]} + {products[b]} ({clash.rule.id})")
    return found


def _addresses(kb: KnowledgeBase, names: list[str], concern: str) -> bool:
    return any(c.concern == concern for n in names for c in kb.concern_claims(n))


@pytest.mark.parametrize("persona", PERSONAS, ids=lambda p: p.name)
async def test_every_persona_gets_results_within_every_hard_limit(
    client: Client, kb: KnowledgeBase, shopper: Callable[[str], Shopper], persona: Persona
) -> None:
    person = shopper(persona.name.split()[0])
    await person.ok("update_profile", **persona.profile)

    recommended = await person.ok("recommend_products", limit=8, **persona.ask)
    products = [r["product"] for r in recommended["products"]]
    assert products, f"{persona.name}: no recommendations ({recommended['suggestions']})"
    per_product_budget = persona.profile.get("budget")
    broken: list[str] = []
    for product in products:
        broken += await _hard_limits(client, kb, persona, product)
        if per_product_budget:
            assert product["price"]["amount_minor"] <= per_product_budget * 100, product
    assert not broken, f"{persona.name}: {broken}"
    assert all(r["reasons"] for r in recommended["products"])

    arguments: dict[str, Any] = {"style": persona.style}
    if persona.routine_budget:
        arguments["budget"] = persona.routine_budget
    routine = await person.ok("build_routine", **arguments)
    assert routine["am"][-1]["step"] == "Sunscreen", routine["am"]
    assert any(s["product"]["category"] == "sunscreen" for s in routine["am"])
    budget = _budget_minor(persona)
    if budget is not None:
        assert routine["total"]["amount_minor"] <= budget, (routine["total"], budget)
    distinct = {s["product"]["id"]: s["product"] for s in routine["am"] + routine["pm"]}
    assert sum(p["price"]["amount_minor"] for p in distinct.values()) == routine["total"]["amount_minor"]
    for product in distinct.values():
        broken += await _hard_limits(client, kb, persona, product)
    assert not broken, f"{persona.name}: {broken}"
    assert not await _clashes_in_slots(client, kb, routine), persona.name
    for slot in ("am", "pm"):
        steps = [s["step"] for s in routine[slot]]
        assert steps[0] == "Cleanse" or "Cleanse" in routine["dropped_steps"], steps
        assert [s["order"] for s in routine[slot]] == list(range(1, len(steps) + 1))
    assert routine["warnings"] and "not medical advice" in routine["notice"]


@pytest.mark.parametrize("persona", PERSONAS, ids=lambda p: p.name)
async def test_the_top_recommendation_addresses_the_main_concern(
    client: Client, kb: KnowledgeBase, shopper: Callable[[str], Shopper], persona: Persona
) -> None:
    person = shopper(persona.name.split()[0])
    await person.ok("update_profile", **persona.profile)
    recommended = await person.ok("recommend_products", **persona.ask)
    top = recommended["products"][0]
    names = await ingredients_of(client, top["product"]["id"])
    assert _addresses(kb, names, persona.main_concern), (persona.name, top["product"]["name"])
    concern_reasons = [r for r in top["reasons"] if r["kind"] == "concern"]
    assert concern_reasons and concern_reasons[0]["source_url"].startswith("https://")
