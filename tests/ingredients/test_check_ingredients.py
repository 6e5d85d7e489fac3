"""`check_ingredients` on real demo-catalog products and pasted lists: clashes across and inside items,
avoided ingredients, cautions for the profile given, and clear refusals."""

from __future__ import annotations

from typing import Any

from mcp import Client

RETINOL = "prd_706be553cc36"  # The Ordinary Retinol 0.5% in Squalane
GLYCOLIC = "prd_9c5532d6cfd5"  # The Ordinary Glycolic Acid 7% Exfoliating Toner
BENZOYL = "prd_292715d09253"  # Neutrogena On-the-Spot Acne Treatment (benzoyl peroxide)


async def check(client: Client, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool("check_ingredients", arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def refusal(client: Client, **arguments: Any) -> str:
    result = await client.call_tool("check_ingredients", arguments)
    assert result.is_error
    return " ".join(getattr(c, "text", "") for c in result.content)


async def test_a_retinoid_and_an_aha_are_kept_out_of_one_slot_with_a_source(client: Client) -> None:
    found = await check(client, product_ids=[RETINOL, GLYCOLIC])

    across = [c for c in found["clashes"] if c["between"][0] != c["between"][1]]
    assert across, found["clashes"]
    clash = across[0]
    assert clash["severity"] == "avoid_same_slot"
    assert "Retinol" in clash["between"][0] + clash["between"][1] or "Retinol" in " ".join(
        clash["ingredients"]
    )
    assert "night" in clash["advice"].lower() or "morning" in clash["advice"].lower()
    assert clash["source"]["url"].startswith("https://")
    assert [i["product_id"] for i in found["items"]] == [RETINOL, GLYCOLIC]
    assert "not medical advice" in found["notice"]


async def test_a_retinoid_and_benzoyl_peroxide_clash(client: Client) -> None:
    found = await check(client, product_ids=[BENZOYL, RETINOL])

    assert any("Benzoyl Peroxide" in c["ingredients"] for c in found["clashes"]), found["clashes"]


async def test_niacinamide_with_vitamin_c_is_not_called_a_clash(client: Client) -> None:
    found = await check(client, ingredients_text="Aqua, Niacinamide 10%, Ascorbic Acid, Glycerin")

    assert found["clashes"] == []
    assert found["items"][0]["recognised"] == 4


async def test_avoided_words_and_pregnancy_cautions_follow_what_the_shopper_said(client: Client) -> None:
    text = "Ingredients: Aqua/Water, Glycerin, Retinol, Parfum (Fragrance), Linalool."
    plain = await check(client, ingredients_text=text)
    careful = await check(
        client,
        ingredients_text=text,
        avoid_ingredients=["fragrance"],
        pregnant_or_nursing=True,
        sensitive_skin=True,
    )

    assert plain["avoided"] == []
    assert {c["kind"] for c in plain["cautions"]} & {"pregnancy", "sensitive_skin"} == set()
    assert any(c["kind"] == "photosensitivity" and c["ingredient"] == "Retinol" for c in plain["cautions"])
    assert [(a["ingredient"], a["because"]) for a in careful["avoided"]] == [
        ("Parfum", "fragrance"),
        ("Linalool", "fragrance"),
    ]
    kinds = [(c["ingredient"], c["kind"]) for c in careful["cautions"]]
    assert len(kinds) == len(set(kinds)), "one caution per ingredient and kind"
    assert ("Retinol", "pregnancy") in kinds
    assert any(kind == "sensitive_skin" for _, kind in kinds)


async def test_unknown_words_are_matched_as_text(client: Client) -> None:
    found = await check(
        client, ingredients_text="Aqua, Snail Secretion Filtrate, Glycerin", avoid_ingredients=["snail"]
    )

    assert [a["ingredient"] for a in found["avoided"]] == ["Snail Secretion Filtrate"]


async def test_bad_input_is_refused_clearly(client: Client) -> None:
    assert "product_ids" in await refusal(client)
    assert "prd_000000000000" in await refusal(client, product_ids=["prd_000000000000"])
    assert "ingredients_text" in await refusal(client, ingredients_text=" ,;. ")
